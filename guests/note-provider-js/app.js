// The `note` resource provider in JavaScript: the smallest complete implementation of a
// logical resource, and the template of `paasm new --lang js --world provider`.
//
// A note is keyed by its `title` and holds a `text`; its physical form is an entry in the
// provider's own `state` (`note/<title>`, and `suspended/<title>` while it is suspended), so
// every operation has something real to find, change or miss. The host validates parameters
// against the schema, keeps the records and checks existence; the provider adds what only it
// knows: the `text` length limit (the config attribute `maxlength`) and the readonly `length`
// and `status` it reports back. Replace the state entries with whatever your resource manages.
//
// An operation's error is thrown as the WIT variant `error`: `{ tag: "not-found", val: "..." }`.
import { log } from "paasm:platform/log@0.1.0";
import {
  get as stateGet,
  set as stateSet,
  delete as stateDelete,
  keys as stateKeys,
} from "paasm:platform/state@0.1.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function prop(name, type, description, more = {}) {
  return {
    name,
    description,
    type,
    default: undefined,
    key: false,
    optional: false,
    readonly: false,
    choices: [],
    ...more,
  };
}

function title(params) {
  return params.get("title") ?? "";
}

// The note's text, or `not-found` when it has no state entry.
function stored(title) {
  const value = stateGet(`note/${title}`);
  if (value === undefined) {
    throw { tag: "not-found", val: `there is no note ${JSON.stringify(title)}` };
  }
  return decoder.decode(value);
}

// The number of characters (code points) of `text`.
function length(text) {
  return [...text].length;
}

// Refuses a text longer than the config attribute `maxlength`.
function checkLength(params, text) {
  let most = Number.parseInt(params.get("maxlength") ?? "280", 10);
  if (Number.isNaN(most)) {
    most = 280;
  }
  if (length(text) > most) {
    throw {
      tag: "invalid-parameter",
      val: { name: "text", message: `a note holds at most ${most} characters` },
    };
  }
}

// Puts what the provider reports into `params`: the text, its length and the status.
function report(params, title, text) {
  params.set("text", text);
  params.set("length", String(length(text)));
  const suspended = stateGet(`suspended/${title}`) !== undefined;
  params.set("status", suspended ? "suspended" : "active");
}

export const operations = {
  describe() {
    return {
      resourceName: "note",
      physicalName: "note_state",
      lkeyName: "title",
      lkeyKind: "str",
      resourceDescription: "a note kept in the provider's state",
      parentName: undefined,
      managedPkey: false,
      instanceSchema: [
        prop("title", "str", "what the note is called", { key: true }),
        prop("text", "str", "what the note says", { optional: true }),
        prop("priority", "unum", "how much the note matters", { default: "1" }),
        prop("length", "unum", "characters in the text", { readonly: true }),
        prop("status", "str", "active or suspended", { readonly: true }),
      ],
      configSchema: [
        prop("maxlength", "unum", "the longest text a note holds", { default: "280" }),
      ],
      exclusive: false,
      offline: false,
      ignoreExists: false,
      cacheable: false,
      caseSensitive: false,
      listable: true,
    };
  },

  create(params) {
    const name = title(params);
    if (stateGet(`note/${name}`) !== undefined) {
      throw { tag: "already-exists", val: `the note ${JSON.stringify(name)} exists` };
    }
    const text = params.get("text") ?? "";
    checkLength(params, text);
    stateSet(`note/${name}`, encoder.encode(text));
    report(params, name, text);
    log("info", `created the note ${name}`);
  },

  get(params) {
    const name = title(params);
    report(params, name, stored(name));
  },

  update(params, newParams) {
    const name = title(params);
    let text = stored(name);
    const newText = newParams.get("text");
    if (newText !== undefined) {
      checkLength(params, newText);
      stateSet(`note/${name}`, encoder.encode(newText));
      text = newText;
    }
    const priority = newParams.get("priority");
    if (priority !== undefined) {
      params.set("priority", priority);
    }
    report(params, name, text);
  },

  delete(params) {
    const name = title(params);
    stored(name);
    stateDelete(`note/${name}`);
    stateDelete(`suspended/${name}`);
    log("info", `deleted the note ${name}`);
  },

  suspend(params) {
    const name = title(params);
    const text = stored(name);
    stateSet(`suspended/${name}`, encoder.encode("1"));
    report(params, name, text);
  },

  resume(params) {
    const name = title(params);
    const text = stored(name);
    stateDelete(`suspended/${name}`);
    report(params, name, text);
  },

  enumerate(_parentPkey, _config) {
    return stateKeys("note/").map((key) => ({ tag: "str", val: key.slice("note/".length) }));
  },
};
