// Package manager is what the ConPaaS HelloWorld manager's exported interfaces share (the
// packages export_*, whose names the generated bindings call): logging, reading an agent's
// greeting and calling every node's agent at once.
//
// The host owns the lifecycle (states, adding and removing nodes, listing them); this
// component adds what the original HelloWorldManager does on top of it: every new agent node
// is configured with $STRING = helloworld, each new node's agent is started with `startup`,
// get_helloworld asks every agent for its greeting, and upload_note logs a file's first line.
// Nothing is kept between calls: the nodes and the service state come from the controller.
package manager

import (
	"encoding/json"
	"strings"

	"wit_component/paasm_platform_agents"
	"wit_component/paasm_platform_log"
	"wit_component/paasm_platform_types"
)

// Running is the state the service must be in for get_helloworld.
const Running = "RUNNING"

// Info logs at the info level.
func Info(message string) {
	paasm_platform_log.Log(paasm_platform_log.LevelInfo, message)
}

// Greeting is the greeting in an agent's get_helloworld reply, {"result": "<greeting>"}; any
// other reply as JSON text.
func Greeting(reply string) string {
	var value any
	if err := json.Unmarshal([]byte(reply), &value); err != nil {
		return reply
	}
	if object, ok := value.(map[string]any); ok {
		if greeting, ok := object["result"].(string); ok {
			return greeting
		}
	}
	text, err := json.Marshal(value)
	if err != nil {
		return reply
	}
	return string(text)
}

// Ids are the ids of nodes, in order.
func Ids(nodes []paasm_platform_types.Node) []string {
	ids := make([]string, len(nodes))
	for i, node := range nodes {
		ids[i] = node.Id
	}
	return ids
}

// CallAll calls method on the agents of every node in ids at once, logs logged(id, reply)
// for each answer and returns every failure(id, error) joined by "; " ("" when none failed).
func CallAll(
	ids []string,
	verb paasm_platform_agents.Verb,
	method string,
	logged func(id string, reply string) string,
	failure func(id string, err string) string,
) string {
	replies := paasm_platform_agents.CallEach(ids, verb, method, "{}")
	var failures []string
	for i, id := range ids {
		if replies[i].IsOk() {
			Info(logged(id, replies[i].Ok()))
		} else {
			failures = append(failures, failure(id, replies[i].Err()))
		}
	}
	return strings.Join(failures, "; ")
}
