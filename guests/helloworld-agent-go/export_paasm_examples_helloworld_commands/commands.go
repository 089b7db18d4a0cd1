// Package export_paasm_examples_helloworld_commands is the agent's POST methods.
package export_paasm_examples_helloworld_commands

import (
	"wit_component/agent"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Startup puts the agent in the RUNNING state.
func Startup() witTypes.Result[witTypes.Unit, string] {
	agent.SetString(agent.State, agent.Running)
	agent.Info("Agent started up")
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}
