// Package export_paasm_examples_helloworld_manager_queries is the manager's GET methods.
package export_paasm_examples_helloworld_manager_queries

import (
	"fmt"

	"wit_component/manager"
	"wit_component/paasm_examples_helloworld_manager_queries"
	"wit_component/paasm_platform_agents"
	"wit_component/paasm_platform_controller"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type reply = paasm_examples_helloworld_manager_queries.HelloworldReply

// GetHelloworld asks every node's agent for its greeting, logs each one and answers the ids
// of the nodes.
func GetHelloworld() witTypes.Result[reply, string] {
	if paasm_platform_controller.ServiceState() != manager.Running {
		return witTypes.Err[reply, string]("ERROR: Wrong state to get_helloworld")
	}
	ids := manager.Ids(paasm_platform_controller.ListNodes())
	failed := manager.CallAll(
		ids,
		paasm_platform_agents.VerbGet,
		"get_helloworld",
		func(id string, answer string) string {
			return fmt.Sprintf("Received %s from %s", manager.Greeting(answer), id)
		},
		func(id string, err string) string {
			return fmt.Sprintf("ERROR: get_helloworld failed on %s: %s", id, err)
		},
	)
	if failed != "" {
		return witTypes.Err[reply, string](failed)
	}
	return witTypes.Ok[reply, string](reply{Helloworld: ids})
}
