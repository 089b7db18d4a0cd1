// Package export_paasm_service_lifecycle is the agent's paasm:service/lifecycle.
package export_paasm_service_lifecycle

import (
	"wit_component/agent"
	"wit_component/paasm_platform_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func OnStartup() witTypes.Result[witTypes.Unit, string] {
	agent.Info("helloworld agent loaded")
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

func AgentContext(role string, cloud string) []witTypes.Tuple2[string, string] {
	return nil
}

func OnNodesAdded(nodes []paasm_platform_types.Node) witTypes.Result[witTypes.Unit, string] {
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

func OnNodesRemoving(nodes []paasm_platform_types.Node) witTypes.Result[witTypes.Unit, string] {
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

func OnShutdown() witTypes.Result[witTypes.Unit, string] {
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}
