package wire

import (
	"errors"
	"testing"
	"time"
)

func TestParseEnableTrigger(t *testing.T) {
	tests := []struct {
		name, body string
		want       *TriggerSpec
		code       string
	}{
		{"none", `{"rules":[{"pattern":"a:*"}]}`, nil, ""},
		{"default every", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic","dir":"/tmp/x/"}}`,
			&TriggerSpec{On: "app:panic", Dir: "/tmp/x", Every: DefaultTriggerEvery}, ""},
		{"every", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:*","dir":"/tmp","every":"2s"}}`,
			&TriggerSpec{On: "app:*", Dir: "/tmp", Every: 2 * time.Second}, ""},
		{"relative dir", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic","dir":"snaps"}}`, nil, CodeInvalid},
		{"no dir", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic"}}`, nil, CodeInvalid},
		{"too often", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic","dir":"/tmp","every":"1ms"}}`, nil, CodeInvalid},
		{"bad every", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"app:panic","dir":"/tmp","every":"soon"}}`, nil, CodeInvalid},
		{"bad glob", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"[","dir":"/tmp"}}`, nil, CodeBadPattern},
		{"unknown field", `{"rules":[{"pattern":"a:*"}],"trigger":{"on":"a:b","dir":"/tmp","x":1}}`, nil, CodeUnknownField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseEnableRequest([]byte(tt.body))
			if tt.code != "" {
				var we *Error
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
