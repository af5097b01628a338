// Test helper: Letro contact pairing requests, each a SignatureBundle of @relaycorp/veraid
// from its own Awala endpoint (@relaycorp/relaynet-core), as Letro for Android sends them.
// Reads one JSON command on stdin, writes one JSON answer on stdout. The VeraId part is the
// veraid package's own bridge, with its own packages (npm ci --prefix veraid/tests/interop).
import { derSerializePublicKey, generateRSAKeyPair, getIdFromIdentityKey } from '@relaycorp/relaynet-core';
import { Constructed, Primitive, Sequence, fromBER } from 'asn1js';
import {
  generateOrganisation,
  hasNonMinimalSerial,
  importOrganisation,
  serve,
  signAsNewMember,
  toArrayBuffer,
} from '../../veraid/tests/interop/veraid_bridge.mjs';

const LETRO_SERVICE_OID = '1.3.6.1.4.1.58708.2.0';

// The DER ContactPairingRequest a Letro agent signs, built with asn1js as Letro for Android
// builds it with its own ASN.1 library: [0] IMPLICIT SubjectPublicKeyInfo, [1] IMPLICIT UTF8String.
function contactPairingRequest(spki, targetId) {
  const spkiSequence = fromBER(toArrayBuffer(spki)).result;
  return new Sequence({
    value: [
      new Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: spkiSequence.valueBlock.value }),
      new Primitive({ idBlock: { tagClass: 3, tagNumber: 1 }, valueHex: Buffer.from(targetId, 'utf8') }),
    ],
  }).toBER();
}

// The organisation of `pairingRequests`: new, or (options.organisation) with the key and
// DNSSEC chain of one made in Python, whose root the test's worker trusts already.
async function pairingOrganisation(options, start, end, nonMinimal) {
  if (!options.organisation) {
    return generateOrganisation(options.domain, start, end, 2048, 3600, nonMinimal);
  }
  const { key, dnssecChain } = options.organisation;
  return importOrganisation(options.domain, key, dnssecChain, start, end, nonMinimal);
}

// Contact pairing requests of several members of one organisation, each from its own Awala
// endpoint (keys and ids from @relaycorp/relaynet-core), as the Letro service expects them.
// options.nonMinimalSerials: every certificate has a non-minimal serial.
async function pairingRequests(options) {
  const start = new Date(options.start);
  const end = new Date(options.end);
  const nonMinimal = Boolean(options.nonMinimalSerials);
  const organisation = await pairingOrganisation(options, start, end, nonMinimal);
  const requests = [];
  for (const { name, target } of options.requests) {
    const endpointKeys = await generateRSAKeyPair();
    const plaintext = contactPairingRequest(await derSerializePublicKey(endpointKeys.publicKey), target);
    const { bundle, serialNonMinimal } = await signAsNewMember(
      organisation, name, plaintext, LETRO_SERVICE_OID, start, end, nonMinimal,
    );
    requests.push({
      memberSerialNonMinimal: serialNonMinimal,
      veraidId: `${name}@${options.domain}`,
      endpointId: await getIdFromIdentityKey(endpointKeys.publicKey),
      bundle,
    });
  }
  return {
    trustAnchor: organisation.trustAnchor,
    organisationSerialNonMinimal: hasNonMinimalSerial(organisation.orgCertificate),
    requests,
  };
}

await serve({ pairingRequests: (command) => pairingRequests(command.options) });
