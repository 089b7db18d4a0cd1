// Package export_paasm_examples_helloworld_uploads is the agent's UPLOAD methods.
package export_paasm_examples_helloworld_uploads

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"wit_component/agent"
	"wit_component/paasm_examples_helloworld_uploads"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type uploadInfo = paasm_examples_helloworld_uploads.UploadInfo

// UploadGreeting replaces the greeting with the uploaded UTF-8 file (one trailing newline
// removed).
func UploadGreeting(greeting []uint8) witTypes.Result[uploadInfo, string] {
	if len(greeting) > math.MaxUint32 {
		return witTypes.Err[uploadInfo, string]("ERROR: greeting is too large")
	}
	if !utf8.Valid(greeting) {
		return witTypes.Err[uploadInfo, string]("ERROR: greeting is not valid UTF-8")
	}
	text := strings.TrimSuffix(string(greeting), "\n")
	text = strings.TrimSuffix(text, "\r")
	agent.SetString(agent.Greeting, text)
	agent.Info(fmt.Sprintf("greeting replaced (%d bytes)", len(greeting)))
	return witTypes.Ok[uploadInfo, string](uploadInfo{Bytes: uint32(len(greeting))})
}
