// Test helper: Awala material from @relaycorp/relaynet-core for the Python side. Reads one JSON
// command on stdin, writes one JSON answer on stdout; binary values travel as base64.
import {
  CertificationPath,
  PrivateEndpointConnParams,
  generateECDHKeyPair,
  generateRSAKeyPair,
  getIdFromIdentityKey,
  issueDeliveryAuthorization,
  issueEndpointCertificate,
} from '@relaycorp/relaynet-core';

// Connection parameters by which a granter endpoint authorises a grantee, as
// FirstPartyEndpoint.authorizeIndefinitely() makes them: a PDA issued by the granter's
// certificate for the grantee's identity key, and the granter's initial session key.
async function connectionParams() {
  const now = new Date();
  const end = new Date(now.getTime() + 30 * 24 * 3600 * 1000);
  const granter = await generateRSAKeyPair();
  const grantee = await generateRSAKeyPair();
  const granterCertificate = await issueEndpointCertificate({
    issuerPrivateKey: granter.privateKey, subjectPublicKey: granter.publicKey, validityEndDate: end,
  });
  const pda = await issueDeliveryAuthorization({
    issuerCertificate: granterCertificate,
    issuerPrivateKey: granter.privateKey,
    subjectPublicKey: grantee.publicKey,
    validityEndDate: end,
  });
  const sessionKeyPair = await generateECDHKeyPair();
  const params = new PrivateEndpointConnParams(
    granter.publicKey,
    'braavos.relaycorp.cloud',
    new CertificationPath(pda, [granterCertificate]),
    { keyId: Buffer.from('0123456789abcdef', 'hex'), publicKey: sessionKeyPair.publicKey },
  );
  return {
    granterId: await getIdFromIdentityKey(granter.publicKey),
    granteeId: await getIdFromIdentityKey(grantee.publicKey),
    params: Buffer.from(await params.serialize()).toString('base64'),
  };
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const command = JSON.parse(Buffer.concat(chunks).toString());
if (command.command !== 'connectionParams') throw new Error(`Unknown command ${command.command}`);
const answer = [];
for (let i = 0; i < command.count; i += 1) answer.push(await connectionParams());
process.stdout.write(JSON.stringify(answer));
