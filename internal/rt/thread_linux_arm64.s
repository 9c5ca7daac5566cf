#include "textflag.h"

// The current goroutine's g is in register g (R28); its m field is the
// seventh word of runtime.g (stack lo and hi, stackguard0, stackguard1,
// _panic, _defer, m: "offset known to arm liblink" in runtime2.go).
#define G_M 48

// func curM() uintptr
TEXT ·curM(SB), NOSPLIT, $0-8
	MOVD G_M(g), R0
	MOVD R0, ret+0(FP)
	RET

// func mWord(off uintptr) uint64
TEXT ·mWord(SB), NOSPLIT, $0-16
	MOVD off+0(FP), R1
	MOVD G_M(g), R0
	MOVD (R0)(R1), R0
	MOVD R0, ret+8(FP)
	RET

// func threadID() int32
TEXT ·threadID(SB), NOSPLIT, $0-4
	MOVD ·procidOff(SB), R1
	MOVD G_M(g), R0
	MOVWU (R0)(R1), R0
	MOVW R0, ret+0(FP)
	RET
