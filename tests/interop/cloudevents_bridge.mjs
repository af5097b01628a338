// Exchanges CloudEvents with the official CloudEvents JavaScript SDK, for interop tests.
//
// Reads one JSON command on stdin and writes one JSON result on stdout:
//
// * {"command": "emit", "attributes": {...}, "data_base64": "...", "mode": "binary"}
//   Builds a CloudEvent from the attributes and the data (as a Buffer), as the Awala
//   Internet Endpoint does for incoming service messages, and serialises it with
//   HTTP.binary(), or HTTP.structured() with "mode": "structured".
//   Result: {"headers": {...}, "body_base64": "..."}.
//
// * {"command": "receive", "headers": {...}, "body_base64": "..."}
//   Parses a binary-mode HTTP request with HTTP.toEvent(), as the endpoint's receiver
//   does with our outgoing service messages. Result: {"attributes": {...},
//   "extensions": {...}, "data_type": "...", "data_base64": "..."}.
//
// Failures are reported as {"error": "..."} with exit status 1.

import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";

import { CloudEvent, HTTP } from "cloudevents";

const CONTEXT_ATTRIBUTES = [
  "specversion",
  "id",
  "type",
  "source",
  "subject",
  "time",
  "datacontenttype",
  "dataschema",
];
const NON_EXTENSION_PROPERTIES = new Set([
  ...CONTEXT_ATTRIBUTES,
  "data",
  "data_base64",
  "datacontentencoding",
  "schemaurl",
]);

function emit({ attributes, data_base64: dataBase64, mode = "binary" }) {
  const data = dataBase64 === undefined ? undefined : Buffer.from(dataBase64, "base64");
  const event = new CloudEvent({ ...attributes, data });
  const message = mode === "structured" ? HTTP.structured(event) : HTTP.binary(event);
  const headers = Object.fromEntries(
    Object.entries(message.headers).map(([name, value]) => [name, String(value)]),
  );
  // Binary mode gives the data as a Buffer; structured mode, the JSON document as text.
  const body = typeof message.body === "string" ? Buffer.from(message.body, "utf8") : message.body;
  if (!Buffer.isBuffer(body)) {
    throw new Error(`HTTP.${mode}() gave a ${typeof message.body} body`);
  }
  return { headers, body_base64: body.toString("base64") };
}

function describeData(data) {
  if (data === undefined || data === null) {
    return { data_type: String(data), data_base64: null };
  }
  if (ArrayBuffer.isView(data)) {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return { data_type: "binary", data_base64: bytes.toString("base64") };
  }
  if (typeof data === "string") {
    return { data_type: "string", data_base64: Buffer.from(data, "utf8").toString("base64") };
  }
  return {
    data_type: typeof data,
    data_base64: Buffer.from(JSON.stringify(data), "utf8").toString("base64"),
  };
}

function receive({ headers, body_base64: bodyBase64 }) {
  const body = Buffer.from(bodyBase64, "base64");
  const event = HTTP.toEvent({ headers, body });
  if (Array.isArray(event)) {
    throw new Error("HTTP.toEvent() gave a batch, not one event");
  }
  event.validate();
  const attributes = {};
  for (const name of CONTEXT_ATTRIBUTES) {
    if (event[name] !== undefined) {
      attributes[name] = String(event[name]);
    }
  }
  const extensions = {};
  for (const [name, value] of Object.entries(event)) {
    if (!NON_EXTENSION_PROPERTIES.has(name) && value !== undefined) {
      extensions[name] = value;
    }
  }
  return { attributes, extensions, ...describeData(event.data) };
}

const COMMANDS = { emit, receive };

try {
  const request = JSON.parse(readFileSync(0, "utf8"));
  const handler = COMMANDS[request.command];
  if (handler === undefined) {
    throw new Error(`Unknown command: ${request.command}`);
  }
  process.stdout.write(JSON.stringify(handler(request)));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error) }));
  process.exitCode = 1;
}
