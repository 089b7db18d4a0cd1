// Package note is what the note provider's operations (the package
// export_paasm_resource_operations, whose name the generated bindings call) share: the note's
// state entries, the checks only the provider knows and what it reports back, and logging.
//
// A note is keyed by its `title` and holds a `text`; its physical form is an entry in the
// provider's own state (`note/<title>`, and `suspended/<title>` while it is suspended). The
// host validates parameters against the schema, keeps the records and checks existence; the
// provider adds the `text` length limit (the config attribute `maxlength`) and the readonly
// `length` and `status` it reports. Nothing is kept between calls but the state entries.
package note

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"wit_component/paasm_platform_log"
	"wit_component/paasm_platform_parameters"
	"wit_component/paasm_platform_state"
	"wit_component/paasm_resource_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Parameters is one instance's parameters, borrowed from the host for the call.
type Parameters = paasm_platform_parameters.Parameters

// Error is why an operation failed.
type Error = paasm_resource_types.Error

// Unit is the result of an operation that reports only through its parameters.
type Unit = witTypes.Result[witTypes.Unit, Error]

// DefaultMaxLength is the default of the config attribute `maxlength`.
const DefaultMaxLength = 280

// Ok is an operation's success.
func Ok() Unit {
	return witTypes.Ok[witTypes.Unit, Error](witTypes.Unit{})
}

// Fail is an operation's failure with err.
func Fail(err Error) Unit {
	return witTypes.Err[witTypes.Unit, Error](err)
}

// Info logs at the info level.
func Info(message string) {
	paasm_platform_log.Log(paasm_platform_log.LevelInfo, message)
}

// TextKey is the state key holding the text of the note title.
func TextKey(title string) string {
	return "note/" + title
}

// SuspendedKey is the state key present while the note title is suspended.
func SuspendedKey(title string) string {
	return "suspended/" + title
}

// Title is the note's logical key, the parameter `title` ("" when unset).
func Title(params *Parameters) string {
	return params.Get("title").SomeOr("")
}

// Stored is the note's text, or a NotFound error when it has no state entry (or one that is
// not UTF-8 text).
func Stored(title string) (string, *Error) {
	value := paasm_platform_state.Get(TextKey(title))
	if value.IsSome() && utf8.Valid(value.Some()) {
		return string(value.Some()), nil
	}
	err := paasm_resource_types.MakeErrorNotFound(
		fmt.Sprintf("there is no note %s", Quoted(title)))
	return "", &err
}

// Exists is whether the note has a state entry holding text.
func Exists(title string) bool {
	_, err := Stored(title)
	return err == nil
}

// Store keeps text as the note's state entry.
func Store(title string, text string) {
	paasm_platform_state.Set(TextKey(title), []uint8(text))
}

// CheckLength refuses a text longer (in characters) than the config attribute `maxlength`
// in params (280 when it is unset or not a number).
func CheckLength(params *Parameters, text string) *Error {
	max := maxLength(params)
	if uint64(utf8.RuneCountInString(text)) > max {
		err := paasm_resource_types.MakeErrorInvalidParameter(paasm_resource_types.InvalidParameter{
			Name:    "text",
			Message: fmt.Sprintf("a note holds at most %d characters", max),
		})
		return &err
	}
	return nil
}

// maxLength is the config attribute `maxlength`, parsed as the Rust provider parses it (a
// usize of wasm32: digits with an optional leading "+", at most 32 bits), else the default.
func maxLength(params *Parameters) uint64 {
	value := params.Get("maxlength")
	if value.IsNone() {
		return DefaultMaxLength
	}
	digits, _ := strings.CutPrefix(value.Some(), "+")
	max, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return DefaultMaxLength
	}
	return max
}

// Report puts what the provider reports into params: the text, its length in characters and
// the status (`suspended` while the note has a `suspended/<title>` entry, else `active`).
func Report(params *Parameters, title string, text string) {
	params.Set("text", text)
	params.Set("length", strconv.Itoa(utf8.RuneCountInString(text)))
	status := "active"
	if paasm_platform_state.Get(SuspendedKey(title)).IsSome() {
		status = "suspended"
	}
	params.Set("status", status)
}

// Quoted is text in double quotes with the escapes of Rust's `{:?}` for a string, so the
// messages read exactly like the Rust provider's: \" \\ \t \r \n \0, and \u{hex} for every
// other character that is not printable or that extends a grapheme (combining marks).
func Quoted(text string) string {
	var quoted strings.Builder
	quoted.WriteByte('"')
	for _, r := range text {
		switch {
		case r == '"':
			quoted.WriteString(`\"`)
		case r == '\\':
			quoted.WriteString(`\\`)
		case r == '\t':
			quoted.WriteString(`\t`)
		case r == '\r':
			quoted.WriteString(`\r`)
		case r == '\n':
			quoted.WriteString(`\n`)
		case r == 0:
			quoted.WriteString(`\0`)
		case !unicode.IsPrint(r) ||
			unicode.In(r, unicode.Mn, unicode.Me, unicode.Other_Grapheme_Extend):
			fmt.Fprintf(&quoted, `\u{%x}`, r)
		default:
			quoted.WriteRune(r)
		}
	}
	quoted.WriteByte('"')
	return quoted.String()
}
