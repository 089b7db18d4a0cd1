// Package agent is the ConPaaS HelloWorld agent's state and logging, shared by the exported
// interfaces (the packages export_*, whose names the generated bindings call).
package agent

import (
	"wit_component/paasm_platform_log"
	"wit_component/paasm_platform_state"
)

const (
	// State is the state key holding the agent's state (RUNNING once started).
	State = "state"
	// Greeting is the state key holding an uploaded greeting.
	Greeting = "greeting"
	// Running is the state after startup.
	Running = "RUNNING"
)

// Info logs at the info level.
func Info(message string) {
	paasm_platform_log.Log(paasm_platform_log.LevelInfo, message)
}

// GetString is the state value under key as a string, and whether there is one.
func GetString(key string) (string, bool) {
	value := paasm_platform_state.Get(key)
	if value.IsNone() {
		return "", false
	}
	return string(value.Some()), true
}

// SetString stores value under key.
func SetString(key string, value string) {
	paasm_platform_state.Set(key, []uint8(value))
}
