//go:build !unix

package wasm

func processCPU() int64 { return -1 }
