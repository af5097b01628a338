// Test helper: exchanges VeraId bundles between the Python `veraid` package and
// @relaycorp/veraid. Reads one JSON command on stdin, writes one JSON answer on stdout;
// binary values travel as base64.
import { Crypto } from '@peculiar/webcrypto';
import { derSerializePublicKey, generateRSAKeyPair, getIdFromIdentityKey } from '@relaycorp/relaynet-core';
import { Constructed, Primitive, Sequence, fromBER } from 'asn1js';
import { DnsClass, DnsRecord, MockChain, Question, RrSet, SecurityStatus } from '@relaycorp/dnssec';
import {
  MemberIdBundle,
  OrganisationSigner,
  SignatureBundle,
  VeraidDnssecChain,
  generateTxtRdata,
  issueMemberCertificate,
  selfIssueOrganisationCertificate,
} from '@relaycorp/veraid';

const crypto = new Crypto();
const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const unb64 = (text) => Buffer.from(text, 'base64');
const toArrayBuffer = (buffer) =>
  buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);

async function generateKeyPair(modulusLength = 2048) {
  return crypto.subtle.generateKey(
    { name: 'RSA-PSS', modulusLength, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
}

async function exportPrivateKey(key) {
  return b64(await crypto.subtle.exportKey('pkcs8', key));
}

// Everything the Python side verifies, produced the way @relaycorp/veraid's own tests do.
// An organisation with its key, a DNSSEC chain from a MockChain root, and its certificate.
async function generateOrganisation(orgName, start, end, orgModulusLength, ttlOverride) {
  const orgKeys = await generateKeyPair(orgModulusLength);
  const rdata = await generateTxtRdata(orgKeys.publicKey, ttlOverride);
  const mockChain = await MockChain.generate(`${orgName}.`);
  const txtName = `_veraid.${orgName}.`;
  const record = new DnsRecord(txtName, 'TXT', DnsClass.IN, 300, [rdata]);
  const rrset = RrSet.init(new Question(txtName, 'TXT', DnsClass.IN), [record]);
  const fixture = mockChain.generateFixture(rrset, SecurityStatus.SECURE, { start, end });
  const chain = await VeraidDnssecChain.retrieve(orgName, {
    resolver: fixture.resolver,
    trustAnchors: fixture.trustAnchors,
  });
  const orgCertificate = await selfIssueOrganisationCertificate(orgName, orgKeys, end, { startDate: start });
  const [anchor] = fixture.trustAnchors;
  const trustAnchor = {
    keyTag: anchor.keyTag, algorithm: anchor.algorithm, digestType: anchor.digestType,
    digest: Buffer.from(anchor.digest).toString('hex'),
  };
  return { orgKeys, rdata, chain, orgCertificate, trustAnchor };
}

async function generate(options) {
  const start = new Date(options.start);
  const end = new Date(options.end);
  const orgName = options.domain;
  const { orgKeys, rdata, chain, orgCertificate, trustAnchor } = await generateOrganisation(
    orgName, start, end, options.orgModulusLength, options.ttlOverride,
  );
  const memberKeys = await generateKeyPair();
  const memberCertificate = await issueMemberCertificate(
    options.memberName, memberKeys.publicKey, orgCertificate, orgKeys.privateKey, end, { startDate: start },
  );
  const memberIdBundle = new MemberIdBundle(chain, orgCertificate, memberCertificate);
  const plaintext = unb64(options.plaintext);
  const sign = async (signer, key, encapsulate) => {
    const bundle = await SignatureBundle.sign(
      toArrayBuffer(plaintext), options.serviceOid, signer, key, end,
      { startDate: start, shouldEncapsulatePlaintext: encapsulate },
    );
    return b64(bundle.serialise());
  };
  const orgSigner = new OrganisationSigner(chain, orgCertificate, options.attributedName);
  return {
    trustAnchor,
    txtRdata: rdata,
    dnssecChain: chain.responses.map((response) => b64(response)),
    organisationCertificate: b64(orgCertificate.serialize()),
    organisationPrivateKey: await exportPrivateKey(orgKeys.privateKey),
    memberPrivateKey: await exportPrivateKey(memberKeys.privateKey),
    memberIdBundle: b64(memberIdBundle.serialise()),
    memberSignatureDetached: await sign(memberIdBundle, memberKeys.privateKey, false),
    memberSignatureEncapsulated: await sign(memberIdBundle, memberKeys.privateKey, true),
    organisationSignatureDetached: await sign(orgSigner, orgKeys.privateKey, false),
    organisationSignatureEncapsulated: await sign(orgSigner, orgKeys.privateKey, true),
  };
}

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

// Contact pairing requests of several members of one organisation, each from its own Awala
// endpoint (keys and ids from @relaycorp/relaynet-core), as the Letro service expects them.
async function pairingRequests(options) {
  const start = new Date(options.start);
  const end = new Date(options.end);
  const orgName = options.domain;
  const { orgKeys, chain, orgCertificate, trustAnchor } = await generateOrganisation(
    orgName, start, end, 2048, 3600,
  );
  const requests = [];
  for (const { name, target } of options.requests) {
    const memberKeys = await generateKeyPair();
    const memberCertificate = await issueMemberCertificate(
      name, memberKeys.publicKey, orgCertificate, orgKeys.privateKey, end, { startDate: start },
    );
    const memberIdBundle = new MemberIdBundle(chain, orgCertificate, memberCertificate);
    const endpointKeys = await generateRSAKeyPair();
    const plaintext = contactPairingRequest(await derSerializePublicKey(endpointKeys.publicKey), target);
    const bundle = await SignatureBundle.sign(
      plaintext, '1.3.6.1.4.1.58708.2.0', memberIdBundle, memberKeys.privateKey, end,
      { startDate: start, shouldEncapsulatePlaintext: true },
    );
    requests.push({
      veraidId: `${name}@${orgName}`,
      endpointId: await getIdFromIdentityKey(endpointKeys.publicKey),
      bundle: b64(bundle.serialise()),
    });
  }
  return { trustAnchor, requests };
}

function trustAnchors(anchor) {
  return [{
    keyTag: anchor.keyTag, algorithm: anchor.algorithm, digestType: anchor.digestType,
    digest: Buffer.from(anchor.digest, 'hex'),
  }];
}

async function verifyOne(item) {
  const anchors = trustAnchors(item.trustAnchor);
  const date = new Date(item.date);
  try {
    if (item.kind === 'member-id') {
      const bundle = MemberIdBundle.deserialise(toArrayBuffer(unb64(item.bundle)));
      const member = await bundle.verify(item.serviceOid, { start: date, end: date }, anchors);
      return { ok: true, organisation: member.organisation, user: member.user ?? null };
    }
    const bundle = SignatureBundle.deserialise(toArrayBuffer(unb64(item.bundle)));
    const plaintext = item.plaintext === null ? undefined : toArrayBuffer(unb64(item.plaintext));
    const result = await bundle.verify(plaintext, item.serviceOid, date, anchors);
    return {
      ok: true,
      organisation: result.member.organisation,
      user: result.member.user ?? null,
      plaintext: b64(result.plaintext),
      signedByMember: result.wasSignedByMember,
    };
  } catch (error) {
    const cause = error.cause ? ` (${error.cause.message})` : '';
    return { ok: false, error: `${error.message}${cause}` };
  }
}

// Operations per second, one after the other for `seconds`, after a warm-up (as in Python).
async function rate(operation, seconds) {
  for (let i = 0; i < 20; i += 1) await operation();
  const begin = performance.now();
  const deadline = begin + seconds * 1000;
  let count = 0;
  while (performance.now() < deadline) {
    await operation();
    count += 1;
  }
  return count / ((performance.now() - begin) / 1000);
}

// Member signature bundles verified and signed per second.
async function benchmark(item) {
  const bundleSerialised = toArrayBuffer(unb64(item.bundle));
  const plaintext = toArrayBuffer(unb64(item.plaintext));
  const anchors = trustAnchors(item.trustAnchor);
  const date = new Date(item.date);
  const verifications = await rate(
    () => SignatureBundle.deserialise(bundleSerialised).verify(plaintext, item.serviceOid, date, anchors),
    item.seconds,
  );
  const memberIdBundle = MemberIdBundle.deserialise(toArrayBuffer(unb64(item.memberIdBundle)));
  const key = await crypto.subtle.importKey(
    'pkcs8', unb64(item.memberPrivateKey), { name: 'RSA-PSS', hash: 'SHA-256' }, true, ['sign'],
  );
  const signatures = await rate(
    () => SignatureBundle.sign(plaintext, item.serviceOid, memberIdBundle, key, new Date(item.end), {
      startDate: date,
    }),
    item.seconds,
  );
  return { verificationsPerSecond: verifications, signaturesPerSecond: signatures };
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const command = JSON.parse(Buffer.concat(chunks).toString());
let answer;
if (command.command === 'generate') {
  answer = await generate(command.options);
} else if (command.command === 'verify') {
  answer = { results: await Promise.all(command.items.map(verifyOne)) };
} else if (command.command === 'pairingRequests') {
  answer = await pairingRequests(command.options);
} else if (command.command === 'benchmark') {
  answer = await benchmark(command.options);
} else {
  throw new Error(`Unknown command ${command.command}`);
}
process.stdout.write(JSON.stringify(answer));
