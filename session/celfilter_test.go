package session

// The tests compile CEL source in the process, as a program that opts in
// does; TestCELSourceNeedsTheOptIn unregisters the compiler.
import _ "github.com/tracemark/tracemark/session/celfilter"
