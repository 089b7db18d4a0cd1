// Package export_paasm_service_lifecycle is the manager's paasm:service/lifecycle.
package export_paasm_service_lifecycle

import (
	"fmt"

	"wit_component/manager"
	"wit_component/paasm_platform_agents"
	"wit_component/paasm_platform_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type unit = witTypes.Result[witTypes.Unit, string]

func ok() unit {
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

func OnStartup() unit {
	manager.Info("Manager started up")
	return ok()
}

// AgentContext is $STRING = helloworld for every agent, as the original's update_context
// sets it.
func AgentContext(role string, cloud string) []witTypes.Tuple2[string, string] {
	return []witTypes.Tuple2[string, string]{{F0: "STRING", F1: "helloworld"}}
}

// OnNodesAdded starts the agents of the new nodes, all at once.
func OnNodesAdded(nodes []paasm_platform_types.Node) unit {
	failed := manager.CallAll(
		manager.Ids(nodes),
		paasm_platform_agents.VerbPost,
		"startup",
		func(id string, _ string) string { return fmt.Sprintf("Started the agent on %s", id) },
		func(id string, err string) string { return fmt.Sprintf("startup failed on %s: %s", id, err) },
	)
	if failed != "" {
		return witTypes.Err[witTypes.Unit, string](failed)
	}
	return ok()
}

func OnNodesRemoving(nodes []paasm_platform_types.Node) unit {
	return ok()
}

func OnShutdown() unit {
	return ok()
}
