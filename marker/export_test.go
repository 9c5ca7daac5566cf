package marker

// RaceEnabled tells tests that allocation counts do not hold.
const RaceEnabled = raceEnabled

// DebugMode tells tests that the tracemark_debug build tag is set: Events
// escape, so allocation counts do not hold either.
const DebugMode = debugMode
