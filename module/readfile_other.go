//go:build !unix

package module

import "os"

const openNonblock = 0

func clearNonblock(*os.File) error { return nil }
