// The ConPaaS HelloWorld agent in JavaScript: the same behaviour as the Rust one.
import { log } from "paasm:platform/log@0.1.0";
import { get as configGet } from "paasm:platform/config@0.1.0";
import { get as stateGet, set as stateSet } from "paasm:platform/state@0.1.0";

const STATE = "state";
const GREETING = "greeting";
const RUNNING = "RUNNING";

const encoder = new TextEncoder();

function info(message) {
  log("info", message);
}

function getString(key) {
  const value = stateGet(key);
  return value === undefined ? undefined : new TextDecoder().decode(value);
}

export const lifecycle = {
  onStartup() {
    info("helloworld agent loaded");
  },
  agentContext(_role, _cloud) {
    return [];
  },
  onNodesAdded(_nodes) {},
  onNodesRemoving(_nodes) {},
  onShutdown() {},
};

export const commands = {
  startup() {
    stateSet(STATE, encoder.encode(RUNNING));
    info("Agent started up");
  },
};

export const queries = {
  getHelloworld() {
    if (getString(STATE) !== RUNNING) {
      throw "ERROR: Wrong state to get_helloworld";
    }
    let greeting = getString(GREETING);
    if (greeting === undefined) {
      greeting = configGet("agent", "STRING_TO_GENERATE");
      if (greeting === undefined) {
        throw 'ERROR: Missing configuration variable "STRING_TO_GENERATE" in section "agent"';
      }
    }
    return { result: greeting };
  },
};

export const uploads = {
  uploadGreeting(greeting) {
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(greeting);
    } catch {
      throw "ERROR: greeting is not valid UTF-8";
    }
    if (text.endsWith("\n")) text = text.slice(0, -1);
    if (text.endsWith("\r")) text = text.slice(0, -1);
    stateSet(GREETING, encoder.encode(text));
    info(`greeting replaced (${greeting.length} bytes)`);
    return { bytes: greeting.length };
  },
};
