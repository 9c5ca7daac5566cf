// Package text writes the events of a CTF trace as lines of text for
// people, in the spirit of Babeltrace's pretty output and of ftrace.
//
// # Format
//
// The format is stable: scripts may parse it, and changes will only add
// to it. Each event is one line:
//
//	[2023-11-14T22:13:20.000000170Z] (+0.000000005) s0 cpu0 http:request: method="GET" path="/a" body=<0001ff> status=200
//
// made of, separated by single spaces:
//
//   - the timestamp in brackets: wall-clock time in RFC 3339 with exactly
//     nine fractional digits, in UTC unless [WithLocation] says
//     otherwise; with [WithRelative], the seconds since the first line
//     instead, with nine decimals and the integer part padded with spaces
//     to six digits ("[     0.000000070]");
//   - the time since the previous line in seconds with nine decimals, in
//     parentheses with its sign ("(+0.000012345)"); the first line has
//     "(+?.?????????)" like Babeltrace;
//   - "s" and the data stream number, "cpu" and the packet's cpu_id
//     (for tracemark recordings, the buffer shard);
//   - the event name followed by a colon ("http:request:"; names may
//     contain spaces, but not control characters);
//   - one "name=value" pair per field, in declaration order.
//
// Values:
//
//   - integers in decimal, but for fields the trace marks as bools
//     (ctf.Boolean: true, false) and durations (ctf.Duration: Go's
//     time.Duration form, such as 65.487µs or 1.5s): human units, as the
//     marker's format (%t, %v) says;
//   - floats in the shortest decimal form that reads back as the same
//     value of the field's width (float32 0.1 is "0.1"), in plain notation
//     for magnitudes in [1e-6, 1e21) and exponent notation otherwise
//     ("1e+300", "1e-7"), with ".0" added to integral values ("2.0",
//     "-0.0"); "NaN", "+Inf" and "-Inf" for the special values;
//   - strings as double-quoted Go string literals (exactly
//     strconv.Quote: printable Unicode as is, escapes such as \" \\ \n \t,
//     \x01 for control characters, \xff for bytes that are not valid
//     UTF-8, \u2028 for non-printable runes), so strconv.Unquote restores
//     them;
//   - byte sequences as lower-case hexadecimal between angle brackets,
//     "<0001ff>", and "<>" when empty.
//
// A field that the recorder truncated (its bit is set in the event's
// truncation trailer) is followed by "[truncated]": path="/ap"[truncated]
// means that the recorded value "/ap" is the beginning of a longer one.
//
// Where the trace reports lost data, a notice line takes the place of the
// event name and fields:
//
//	[2023-11-14T22:13:20.000000160Z] (+0.000000010) s1 cpu1 [lost 12 events and 1 packet on stream 1 until 2023-11-14T22:13:20.000000250Z]
//
// "lost N events" counts the events the recorder discarded (the growth of
// the CTF events_discarded counter) and "lost N packets" the packets
// missing from the stream (a gap in packet_seq_num); "1 event" and "1
// packet" are singular, and a part with no loss is left out. The time at
// the start of the line and the time after "until" (written like the
// line's timestamp, without the padding in relative mode) bound the
// interval in which the loss happened. Lines end with "\n".
package text
