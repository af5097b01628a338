// Generates Awala connection parameters with @relaycorp/relaynet-core, for interop tests.
//
// Reads one JSON command on stdin, {"internetAddress": "..."}, and writes one JSON result
// on stdout: the DER serialisation of a NodeConnectionParams made by the library with a
// fresh RSA identity key and a fresh ECDH session key, plus the parts it was made of, so
// the Python parser can be checked against them:
// {"der_base64", "identity_key_base64", "session_key_id_base64", "session_public_key_base64"}.
//
// Failures are reported as {"error": "..."} with exit status 1.

import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";

import {
  derSerializePublicKey,
  generateRSAKeyPair,
  NodeConnectionParams,
  SessionKeyPair,
} from "@relaycorp/relaynet-core";

async function generate({ internetAddress }) {
  const identityKeyPair = await generateRSAKeyPair();
  const { sessionKey } = await SessionKeyPair.generate();
  const params = new NodeConnectionParams(internetAddress, identityKeyPair.publicKey, sessionKey);
  const der = Buffer.from(await params.serialize());
  return {
    der_base64: der.toString("base64"),
    identity_key_base64: (await derSerializePublicKey(identityKeyPair.publicKey)).toString(
      "base64",
    ),
    session_key_id_base64: Buffer.from(sessionKey.keyId).toString("base64"),
    session_public_key_base64: (await derSerializePublicKey(sessionKey.publicKey)).toString(
      "base64",
    ),
  };
}

try {
  const command = JSON.parse(readFileSync(0, "utf8"));
  process.stdout.write(JSON.stringify(await generate(command)));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error) }));
  process.exitCode = 1;
}
