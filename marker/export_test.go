package marker

// RaceEnabled tells tests that allocation counts do not hold.
const RaceEnabled = raceEnabled
