#include "textflag.h"

// The current goroutine's g is at (TLS) in ABI0 code; its m field is the
// seventh word of runtime.g (stack lo and hi, stackguard0, stackguard1,
// _panic, _defer, m: "offset known to arm liblink" in runtime2.go).
#define G_M 48

// func curM() uintptr
TEXT ·curM(SB), NOSPLIT, $0-8
	MOVQ (TLS), AX
	MOVQ G_M(AX), AX
	MOVQ AX, ret+0(FP)
	RET

// func mWord(off uintptr) uint64
TEXT ·mWord(SB), NOSPLIT, $0-16
	MOVQ off+0(FP), BX
	MOVQ (TLS), AX
	MOVQ G_M(AX), AX
	MOVQ (AX)(BX*1), AX
	MOVQ AX, ret+8(FP)
	RET

// func threadID() int32
TEXT ·threadID(SB), NOSPLIT, $0-4
	MOVQ ·procidOff(SB), BX
	MOVQ (TLS), AX
	MOVQ G_M(AX), AX
	MOVL (AX)(BX*1), AX
	MOVL AX, ret+0(FP)
	RET
