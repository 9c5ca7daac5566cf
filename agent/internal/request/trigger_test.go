package request

import (
	"errors"
	"testing"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
)

func TestParseEnableTrigger(t *testing.T) {
	tests := []struct {
		name, body string
		want       *TriggerSpec
		code       string
	}{
		{"none", `{"rules":[{"pattern":"a:*"}]}`, nil, ""},
		{"default every", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic","dir":"/tmp/x/"}}`,
			&TriggerSpec{On: "app:panic", Dir: "/tmp/x", Every: wire.DefaultTriggerEvery}, ""},
		{"every", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:*","dir":"/tmp","every":"2s"}}`,
			&TriggerSpec{On: "app:*", Dir: "/tmp", Every: 2 * time.Second}, ""},
		{"relative dir", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic","dir":"snaps"}}`, nil, wire.CodeInvalid},
		{"no dir", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic"}}`, nil, wire.CodeInvalid},
		{"too often", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic","dir":"/tmp","every":"1ms"}}`, nil, wire.CodeInvalid},
		{"bad every", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic","dir":"/tmp","every":"soon"}}`, nil, wire.CodeInvalid},
		{"bad glob", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"[","dir":"/tmp"}}`, nil, wire.CodeBadPattern},
		{"unknown field", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"a:b","dir":"/tmp","x":1}}`, nil, wire.CodeUnknownField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseEnable([]byte(tt.body))
			if tt.code != "" {
				var we *wire.Error
				if !errors.As(err, &we) || we.Code != tt.code {
					t.Fatalf("error %v, want code %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (spec.Trigger == nil) != (tt.want == nil) || (tt.want != nil && *spec.Trigger != *tt.want) {
				t.Errorf("trigger %+v, want %+v", spec.Trigger, tt.want)
			}
		})
	}
}
