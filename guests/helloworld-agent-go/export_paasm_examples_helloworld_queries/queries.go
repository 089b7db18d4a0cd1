// Package export_paasm_examples_helloworld_queries is the agent's GET methods.
package export_paasm_examples_helloworld_queries

import (
	"wit_component/agent"
	"wit_component/paasm_examples_helloworld_queries"
	"wit_component/paasm_platform_config"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

type hello = paasm_examples_helloworld_queries.Hello

// GetHelloworld is the greeting: the uploaded one if any, else [agent] STRING_TO_GENERATE.
func GetHelloworld() witTypes.Result[hello, string] {
	if state, ok := agent.GetString(agent.State); !ok || state != agent.Running {
		return witTypes.Err[hello, string]("ERROR: Wrong state to get_helloworld")
	}
	if greeting, ok := agent.GetString(agent.Greeting); ok {
		return witTypes.Ok[hello, string](hello{Result: greeting})
	}
	greeting := paasm_platform_config.Get("agent", "STRING_TO_GENERATE")
	if greeting.IsNone() {
		return witTypes.Err[hello, string](
			"ERROR: Missing configuration variable \"STRING_TO_GENERATE\" in section \"agent\"")
	}
	return witTypes.Ok[hello, string](hello{Result: greeting.Some()})
}
