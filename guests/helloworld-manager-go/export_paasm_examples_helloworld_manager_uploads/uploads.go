// Package export_paasm_examples_helloworld_manager_uploads is the manager's UPLOAD methods.
package export_paasm_examples_helloworld_manager_uploads

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"wit_component/manager"
	"wit_component/paasm_examples_helloworld_manager_uploads"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type noteInfo = paasm_examples_helloworld_manager_uploads.NoteInfo

// lossy is note as text, every byte that is not part of a valid UTF-8 sequence replaced by
// U+FFFD.
func lossy(note []uint8) string {
	var text strings.Builder
	for len(note) > 0 {
		r, size := utf8.DecodeRune(note)
		if r == utf8.RuneError && size <= 1 {
			text.WriteRune(utf8.RuneError)
			note = note[1:]
			continue
		}
		text.WriteRune(r)
		note = note[size:]
	}
	return text.String()
}

// UploadNote takes a note file for the service's operators and logs its first line.
func UploadNote(note []uint8) witTypes.Result[noteInfo, string] {
	if len(note) > math.MaxUint32 {
		return witTypes.Err[noteInfo, string]("the note is too large")
	}
	// The first line as Rust's str::lines gives it: up to "\n", without a trailing "\r".
	firstLine, _, _ := strings.Cut(lossy(note), "\n")
	firstLine = strings.TrimSuffix(firstLine, "\r")
	manager.Info(fmt.Sprintf("Received a note of %d bytes: %s", len(note), firstLine))
	return witTypes.Ok[noteInfo, string](noteInfo{Bytes: uint32(len(note)), FirstLine: firstLine})
}
