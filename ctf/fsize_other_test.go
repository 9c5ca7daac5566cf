//go:build !unix

package ctf

import "errors"

// hasFileSizeLimit says whether limitFileSize works here.
const hasFileSizeLimit = false

func limitFileSize(uint64) error { return errors.New("no file size limit here") }
