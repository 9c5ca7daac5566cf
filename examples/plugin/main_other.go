//go:build !wasip1

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "plugin is a tracemark module: build it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (see pluginbuild)")
	os.Exit(2)
}
