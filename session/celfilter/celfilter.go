// Package celfilter lets a program compile filters from CEL source
// itself. Import it for its effect:
//
//	import _ "github.com/tracemark/tracemark/session/celfilter"
//
// Then [session.Session.Enable] accepts filters as CEL source
// (`status >= 500 && path.startsWith("/api")`), and so do
// TRACEMARK_FILTER and the agent's requests that carry a filter's source
// without its checked form.
//
// Without it a program does not link CEL (about 10 MB with its
// dependencies): the agent evaluates the checked form of a filter that
// the tracemark command compiled and type-checked with CEL, and
// [session.Session.EnableChecked] takes such forms in the process. Filters
// compiled here run natively when the checked form can express them, and
// on the CEL program otherwise (comprehensions, string conversions, ...).
package celfilter

import "github.com/tracemark/tracemark/internal/celfilter"

func init() { celfilter.Register() }
