//go:build !linux

package wasm

func threadCPU() int64 { return -1 }
