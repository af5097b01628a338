// Builds Awala PrivateEndpointConnParams with @relaycorp/relaynet-core, for interop tests of
// how the server proves who granted a delivery authorisation (PDA).
//
// Reads one JSON command on stdin, {"cases": [{...}, ...]}, and writes one JSON array on
// stdout, one result per case, in order:
// {"params_base64", "granter_id", "grantee_id", "mallory_id"}, where the ids are those
// relaynet-core computes (getIdFromIdentityKey) for the granter, the grantee and the forger.
//
// A case says how the parameters are made; every field is optional:
// * "hashingAlgorithm": "SHA-256" (default), "SHA-384" or "SHA-512", for the granter's key
//   (relaynet-core signs with RSA-PSS using the hash its RSA keys were generated with);
// * "modulus": the granter's RSA modulus (default 2048);
// * "viaGateway": true to chain the granter's certificate to a private gateway, as Awala
//   for Android does (the CAs are then the endpoint's and the gateway's certificates);
// * "forgery": how Mallory, who does not hold the granter's private key, tries to pass a PDA
//   off as the granter's:
//   - "signedByMallory": the PDA names the granter's certificate as issuer (so its authority
//     key identifier is the granter's) but Mallory's key signs it;
//   - "malloryIdentityKey": the same PDA, with Mallory's key as the identity key, so the
//     signature checks out but the identity key is not the PDA's authority.
//
// Failures are reported as {"error": "..."} with exit status 1.

import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";

import {
  CertificationPath,
  generateECDHKeyPair,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
  issueGatewayCertificate,
  PrivateEndpointConnParams,
} from "@relaycorp/relaynet-core";

const DAY_MS = 24 * 3600 * 1000;

async function granterChain(granter, viaGateway, end) {
  if (!viaGateway) {
    const certificate = await issueEndpointCertificate({
      issuerPrivateKey: granter.privateKey,
      subjectPublicKey: granter.publicKey,
      validityEndDate: end,
    });
    return { certificate, cas: [certificate] };
  }
  const gateway = await generateRSAKeyPair();
  const gatewayCertificate = await issueGatewayCertificate({
    issuerPrivateKey: gateway.privateKey,
    subjectPublicKey: gateway.publicKey,
    validityEndDate: end,
  });
  const certificate = await issueEndpointCertificate({
    issuerCertificate: gatewayCertificate,
    issuerPrivateKey: gateway.privateKey,
    subjectPublicKey: granter.publicKey,
    validityEndDate: end,
  });
  return { certificate, cas: [certificate, gatewayCertificate] };
}

async function build(options) {
  const end = new Date(Date.now() + 30 * DAY_MS);
  const granter = await generateRSAKeyPair({
    hashingAlgorithm: options.hashingAlgorithm ?? "SHA-256",
    modulus: options.modulus ?? 2048,
  });
  const grantee = await generateRSAKeyPair();
  const mallory = await generateRSAKeyPair();
  const { certificate, cas } = await granterChain(granter, options.viaGateway === true, end);
  const signer = options.forgery ? mallory : granter;
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: certificate,
    issuerPrivateKey: signer.privateKey,
    subjectPublicKey: grantee.publicKey,
    validityEndDate: end,
  });
  const identityKey =
    options.forgery === "malloryIdentityKey" ? mallory.publicKey : granter.publicKey;
  const sessionKeyPair = await generateECDHKeyPair();
  const params = new PrivateEndpointConnParams(
    identityKey,
    "braavos.relaycorp.cloud",
    new CertificationPath(pda, cas),
    { keyId: Buffer.from("0123456789abcdef", "hex"), publicKey: sessionKeyPair.publicKey },
  );
  return {
    params_base64: Buffer.from(await params.serialize()).toString("base64"),
    granter_id: await getIdFromIdentityKey(granter.publicKey),
    grantee_id: await getIdFromIdentityKey(grantee.publicKey),
    mallory_id: await getIdFromIdentityKey(mallory.publicKey),
  };
}

try {
  const { cases } = JSON.parse(readFileSync(0, "utf8"));
  const results = [];
  for (const options of cases) results.push(await build(options));
  process.stdout.write(JSON.stringify(results));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error) }));
  process.exitCode = 1;
}
