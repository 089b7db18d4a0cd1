// The ConPaaS HelloWorld manager in JavaScript: the same behaviour as the Rust one.
//
// The host owns the lifecycle (states, adding and removing nodes, listing them); this
// component adds what the original HelloWorldManager does on top of it:
//
// - every new agent node is configured with $STRING = helloworld (agentContext),
// - once the new nodes' agents answer, each one is started with its `startup` command
//   (onNodesAdded),
// - getHelloworld asks every node's agent for its greeting, logs what each answered and
//   replies {"helloworld": [node ids]},
// - uploadNote (an UPLOAD method) takes a file and logs its first line.
//
// Nothing is kept between calls: the nodes and the service state come from the host's
// controller.
import { log } from "paasm:platform/log@0.1.0";
import { listNodes, serviceState } from "paasm:platform/controller@0.1.0";
import { callEach } from "paasm:platform/agents@0.1.0";

const RUNNING = "RUNNING";

function info(message) {
  log("info", message);
}

// The greeting in an agent's get_helloworld reply, {"result": "<greeting>"}; any other reply
// as JSON text.
function greeting(reply) {
  let value;
  try {
    value = JSON.parse(reply);
  } catch {
    return reply;
  }
  if (value !== null && typeof value === "object" && typeof value.result === "string") {
    return value.result;
  }
  return JSON.stringify(value);
}

// Calls `method` on the agents of every node in `ids` at once, logs `logged(id, reply)` for
// each answer and fails with every `failure(id, error)` joined by "; ".
function callAll(ids, verb, method, logged, failure) {
  const replies = callEach(ids, verb, method, "{}");
  const failures = [];
  ids.forEach((id, i) => {
    const reply = replies[i];
    if (reply.tag === "ok") {
      info(logged(id, reply.val));
    } else {
      failures.push(failure(id, reply.val));
    }
  });
  if (failures.length > 0) {
    throw failures.join("; ");
  }
}

export const lifecycle = {
  onStartup() {
    info("Manager started up");
  },
  // $STRING = helloworld for every agent, as the original's update_context sets it.
  agentContext(_role, _cloud) {
    return [["STRING", "helloworld"]];
  },
  // Starts the agents of the new nodes, all at once.
  onNodesAdded(nodes) {
    callAll(
      nodes.map((node) => node.id),
      "post",
      "startup",
      (id, _reply) => `Started the agent on ${id}`,
      (id, error) => `startup failed on ${id}: ${error}`,
    );
  },
  onNodesRemoving(_nodes) {},
  onShutdown() {},
};

export const queries = {
  getHelloworld() {
    if (serviceState() !== RUNNING) {
      throw "ERROR: Wrong state to get_helloworld";
    }
    const ids = listNodes().map((node) => node.id);
    callAll(
      ids,
      "get",
      "get_helloworld",
      (id, reply) => `Received ${greeting(reply)} from ${id}`,
      (id, error) => `ERROR: get_helloworld failed on ${id}: ${error}`,
    );
    return { helloworld: ids };
  },
};

export const uploads = {
  uploadNote(note) {
    const text = new TextDecoder("utf-8").decode(note);
    // The first line as Rust's str::lines gives it: up to "\n", without a trailing "\r".
    let firstLine = text.split("\n", 1)[0];
    if (firstLine.endsWith("\r")) firstLine = firstLine.slice(0, -1);
    info(`Received a note of ${note.length} bytes: ${firstLine}`);
    return { bytes: note.length, firstLine };
  },
};
