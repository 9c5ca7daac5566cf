package marker

// RaceEnabled tells tests that allocation counts do not hold.
const RaceEnabled = raceEnabled

// GraceWindowWidened tells the hammer test that readers yield between
// loading the epoch and counting in (-tags tracemark_gracetest).
const GraceWindowWidened = widenGraceWindow

// DebugMode tells tests that the tracemark_debug build tag is set: Events
// escape, so allocation counts do not hold either.
const DebugMode = debugMode
