// Package export_paasm_resource_operations is the note provider's paasm:resource/operations:
// its description and schemas, the six operations on one note and enumerate (see the package
// note for the state entries they work on).
//
// Every operation drops the parameters it borrows before it returns (`defer params.Drop()`):
// the canonical ABI traps a call that returns with a borrowed handle still in the
// component's table ("borrow handles still remain at the end of the call"), and the Go
// bindings of wit-bindgen 0.61 only wrap a borrowed handle, they never drop it.
package export_paasm_resource_operations

import (
	"fmt"
	"strings"

	"wit_component/note"
	"wit_component/paasm_platform_parameters"
	"wit_component/paasm_platform_state"
	"wit_component/paasm_platform_types"
	"wit_component/paasm_resource_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type (
	parameters  = paasm_platform_parameters.Parameters
	description = paasm_resource_types.Description
	prop        = paasm_resource_types.Prop
	key         = paasm_platform_types.Key
	keys        = witTypes.Result[[]key, note.Error]
)

// property is a property of a schema that is required, writable, not the key and without a
// default or choices; the schemas below change what differs.
func property(name string, ty paasm_resource_types.PropType, text string) prop {
	return prop{
		Name:        name,
		Description: text,
		Type:        ty,
		Default:     witTypes.None[string](),
	}
}

// Describe is the implementation `note_state` of the logical resource `note`, keyed by its
// title, listable, with the config attribute `maxlength`.
func Describe() description {
	title := property("title", paasm_resource_types.PropTypeStr, "what the note is called")
	title.Key = true
	text := property("text", paasm_resource_types.PropTypeStr, "what the note says")
	text.Optional = true
	priority := property("priority", paasm_resource_types.PropTypeUnum, "how much the note matters")
	priority.Default = witTypes.Some("1")
	length := property("length", paasm_resource_types.PropTypeUnum, "characters in the text")
	length.Readonly = true
	status := property("status", paasm_resource_types.PropTypeStr, "active or suspended")
	status.Readonly = true
	maxLength := property("maxlength", paasm_resource_types.PropTypeUnum, "the longest text a note holds")
	maxLength.Default = witTypes.Some(fmt.Sprint(note.DefaultMaxLength))
	return description{
		ResourceName:        "note",
		PhysicalName:        "note_state",
		LkeyName:            "title",
		LkeyKind:            paasm_resource_types.KeyKindStr,
		ResourceDescription: "a note kept in the provider's state",
		ParentName:          witTypes.None[string](),
		ManagedPkey:         false,
		InstanceSchema:      []prop{title, text, priority, length, status},
		ConfigSchema:        []prop{maxLength},
		Exclusive:           false,
		Offline:             false,
		IgnoreExists:        false,
		Cacheable:           false,
		CaseSensitive:       false,
		Listable:            true,
	}
}

// Create stores a new note's text (empty when none is given) and reports it back.
func Create(params *parameters) note.Unit {
	defer params.Drop()
	title := note.Title(params)
	if note.Exists(title) {
		return note.Fail(paasm_resource_types.MakeErrorAlreadyExists(
			fmt.Sprintf("the note %s exists", note.Quoted(title))))
	}
	text := params.Get("text").SomeOr("")
	if err := note.CheckLength(params, text); err != nil {
		return note.Fail(*err)
	}
	note.Store(title, text)
	note.Report(params, title, text)
	note.Info(fmt.Sprintf("created the note %s", title))
	return note.Ok()
}

// Get reports the note's text, length and status.
func Get(params *parameters) note.Unit {
	defer params.Drop()
	title := note.Title(params)
	text, err := note.Stored(title)
	if err != nil {
		return note.Fail(*err)
	}
	note.Report(params, title, text)
	return note.Ok()
}

// Update replaces the text when newParams has one (within the current `maxlength`), takes
// a new priority into params, and reports the note.
func Update(params *parameters, newParams *parameters) note.Unit {
	defer params.Drop()
	defer newParams.Drop()
	title := note.Title(params)
	text, err := note.Stored(title)
	if err != nil {
		return note.Fail(*err)
	}
	if newText := newParams.Get("text"); newText.IsSome() {
		if err := note.CheckLength(params, newText.Some()); err != nil {
			return note.Fail(*err)
		}
		note.Store(title, newText.Some())
		text = newText.Some()
	}
	if priority := newParams.Get("priority"); priority.IsSome() {
		params.Set("priority", priority.Some())
	}
	note.Report(params, title, text)
	return note.Ok()
}

// Delete removes the note's state entries.
func Delete(params *parameters) note.Unit {
	defer params.Drop()
	title := note.Title(params)
	if _, err := note.Stored(title); err != nil {
		return note.Fail(*err)
	}
	paasm_platform_state.Delete(note.TextKey(title))
	paasm_platform_state.Delete(note.SuspendedKey(title))
	note.Info(fmt.Sprintf("deleted the note %s", title))
	return note.Ok()
}

// Suspend marks the note suspended and reports it.
func Suspend(params *parameters) note.Unit {
	defer params.Drop()
	title := note.Title(params)
	text, err := note.Stored(title)
	if err != nil {
		return note.Fail(*err)
	}
	paasm_platform_state.Set(note.SuspendedKey(title), []uint8("1"))
	note.Report(params, title, text)
	return note.Ok()
}

// Resume clears the note's suspension and reports it.
func Resume(params *parameters) note.Unit {
	defer params.Drop()
	title := note.Title(params)
	text, err := note.Stored(title)
	if err != nil {
		return note.Fail(*err)
	}
	paasm_platform_state.Delete(note.SuspendedKey(title))
	note.Report(params, title, text)
	return note.Ok()
}

// Enumerate is the title of every note, sorted (a note is a root resource: parentPkey is
// always none).
func Enumerate(parentPkey witTypes.Option[key], config *parameters) keys {
	defer config.Drop()
	var titles []key
	for _, stateKey := range paasm_platform_state.Keys("note/") {
		if title, ok := strings.CutPrefix(stateKey, "note/"); ok {
			titles = append(titles, paasm_platform_types.MakeKeyStr(title))
		}
	}
	return witTypes.Ok[[]key, note.Error](titles)
}
