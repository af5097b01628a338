// Test helper: exchanges VeraId bundles between the Python `veraid` package and
// @relaycorp/veraid. Run as a script, it reads one JSON command on stdin and writes one JSON
// answer on stdout; binary values travel as base64. Imported, it lends its builders to other
// bridges (the Letro server's pairing_bridge.mjs), so that every VeraId object they make
// comes from this directory's one copy of @relaycorp/veraid.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Crypto } from '@peculiar/webcrypto';
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
export const toArrayBuffer = (buffer) =>
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

// A key pair made in Python (base64 PKCS#8 and SPKI), for RSA-PSS with `hash`: veraid-js
// signs certificates with the hash of the issuer's key.
async function importKeyPair({ pkcs8, spki }, hash = 'SHA-256') {
  const algorithm = { name: 'RSA-PSS', hash };
  return {
    privateKey: await crypto.subtle.importKey('pkcs8', unb64(pkcs8), algorithm, true, ['sign']),
    publicKey: await crypto.subtle.importKey('spki', unb64(spki), algorithm, true, ['verify']),
  };
}

// A DNSSEC chain made in Python, as veraid-js carries it.
function importChain(domain, responses) {
  return new VeraidDnssecChain(domain, responses.map((response) => toArrayBuffer(unb64(response))));
}

// Whether veraid-js wrote a certificate's serial number with a redundant leading zero octet
// (it draws 64 random bits and only clears the sign bit; strict DER forbids the extra octet).
export function hasNonMinimalSerial(certificate) {
  const serial = certificate.pkijsCertificate.serialNumber.valueBlock.valueHexView;
  return serial.length > 1 && serial[0] === 0 && serial[1] < 0x80;
}

const MAX_ISSUANCES = 20000; // one certificate in 512 has a non-minimal serial

// `issue()` once, or (`nonMinimal`) until veraid-js writes a non-minimal serial.
async function issueCertificate(nonMinimal, issue) {
  for (let tries = 1; tries <= MAX_ISSUANCES; tries += 1) {
    const certificate = await issue();
    if (!nonMinimal || hasNonMinimalSerial(certificate)) return { certificate, tries };
  }
  throw new Error(`No certificate with a non-minimal serial in ${MAX_ISSUANCES}`);
}

// Everything the Python side verifies, produced the way @relaycorp/veraid's own tests do.
// An organisation with its key, a DNSSEC chain from a MockChain root, and its certificate
// (`nonMinimal`: one with a non-minimal serial).
export async function generateOrganisation(orgName, start, end, orgModulusLength, ttlOverride, nonMinimal) {
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
  const { certificate: orgCertificate, tries } = await issueCertificate(
    nonMinimal, () => selfIssueOrganisationCertificate(orgName, orgKeys, end, { startDate: start }),
  );
  const [anchor] = fixture.trustAnchors;
  const trustAnchor = {
    keyTag: anchor.keyTag, algorithm: anchor.algorithm, digestType: anchor.digestType,
    digest: Buffer.from(anchor.digest).toString('hex'),
  };
  return { orgKeys, rdata, chain, orgCertificate, trustAnchor, tries };
}

async function generate(options) {
  const start = new Date(options.start);
  const end = new Date(options.end);
  const orgName = options.domain;
  const nonMinimal = Boolean(options.nonMinimalSerials);
  const organisation = await generateOrganisation(
    orgName, start, end, options.orgModulusLength, options.ttlOverride, nonMinimal,
  );
  const { orgKeys, rdata, chain, orgCertificate, trustAnchor } = organisation;
  const memberKeys = await generateKeyPair();
  const member = await issueCertificate(nonMinimal, () => issueMemberCertificate(
    options.memberName, memberKeys.publicKey, orgCertificate, orgKeys.privateKey, end, { startDate: start },
  ));
  const memberCertificate = member.certificate;
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
    memberCertificate: b64(memberCertificate.serialize()),
    issuances: { organisation: organisation.tries, member: member.tries },
    organisationPrivateKey: await exportPrivateKey(orgKeys.privateKey),
    memberPrivateKey: await exportPrivateKey(memberKeys.privateKey),
    memberIdBundle: b64(memberIdBundle.serialise()),
    memberSignatureDetached: await sign(memberIdBundle, memberKeys.privateKey, false),
    memberSignatureEncapsulated: await sign(memberIdBundle, memberKeys.privateKey, true),
    organisationSignatureDetached: await sign(orgSigner, orgKeys.privateKey, false),
    organisationSignatureEncapsulated: await sign(orgSigner, orgKeys.privateKey, true),
  };
}

// An organisation with the key and DNSSEC chain of one made in Python (`key`: base64 PKCS#8
// and SPKI; `dnssecChain`: base64 responses), and a certificate veraid-js self-issues for it.
export async function importOrganisation(domain, key, dnssecChain, start, end, nonMinimal) {
  const orgKeys = await importKeyPair(key);
  const chain = importChain(domain, dnssecChain);
  const { certificate: orgCertificate } = await issueCertificate(nonMinimal, () => (
    selfIssueOrganisationCertificate(domain, orgKeys, end, { startDate: start })
  ));
  return { orgKeys, chain, orgCertificate, trustAnchor: null };
}

// A new member of `organisation` (as generateOrganisation or importOrganisation return it),
// with a fresh key, and its SignatureBundle of `plaintext` (encapsulated).
export async function signAsNewMember(organisation, name, plaintext, serviceOid, start, end, nonMinimal) {
  const { orgKeys, chain, orgCertificate } = organisation;
  const memberKeys = await generateKeyPair();
  const { certificate: memberCertificate } = await issueCertificate(nonMinimal, () => (
    issueMemberCertificate(name, memberKeys.publicKey, orgCertificate, orgKeys.privateKey, end, {
      startDate: start,
    })
  ));
  const memberIdBundle = new MemberIdBundle(chain, orgCertificate, memberCertificate);
  const bundle = await SignatureBundle.sign(
    plaintext, serviceOid, memberIdBundle, memberKeys.privateKey, end,
    { startDate: start, shouldEncapsulatePlaintext: true },
  );
  return { bundle: b64(bundle.serialise()), serialNonMinimal: hasNonMinimalSerial(memberCertificate) };
}

// Many certificates from a few keys and one chain, all made in Python, to catch what
// veraid-js writes only rarely. Round r issues an organisation certificate with
// options.keys[r % n] and a member certificate for options.memberKeys[r % m]. Every
// `bundleEvery` rounds, and in every round with a non-minimal serial, veraid-js also makes
// a MemberIdBundle and member and organisation SignatureBundles (serialising bundles costs
// more than issuing certificates).
async function bulk(options) {
  const start = new Date(options.start);
  const keys = await Promise.all(options.keys.map(async (key) => ({
    label: key.label, pair: await importKeyPair(key, key.hash),
  })));
  const memberKeys = await Promise.all(options.memberKeys.map(async (key) => ({
    label: key.label, pair: await importKeyPair(key),
  })));
  const chain = importChain(options.domain, options.dnssecChain);
  const plaintext = toArrayBuffer(unb64(options.plaintext));
  const signatureEnd = new Date(options.signatureEnd);
  const rounds = [];
  for (let round = options.firstRound; round < options.firstRound + options.rounds; round += 1) {
    const orgKey = keys[round % keys.length];
    const memberKey = memberKeys[round % memberKeys.length];
    const memberName = options.memberNames[round % options.memberNames.length] ?? undefined;
    const end = new Date(options.certificateEnds[round % options.certificateEnds.length]);
    const orgCertificate = await selfIssueOrganisationCertificate(
      options.domain, orgKey.pair, end, { startDate: start },
    );
    const memberCertificate = await issueMemberCertificate(
      memberName, memberKey.pair.publicKey, orgCertificate, orgKey.pair.privateKey, end,
      { startDate: start },
    );
    const result = {
      round,
      organisationKey: orgKey.label,
      memberKey: memberKey.label,
      memberName: memberName ?? null,
      organisationSerialNonMinimal: hasNonMinimalSerial(orgCertificate),
      memberSerialNonMinimal: hasNonMinimalSerial(memberCertificate),
      organisationCertificate: b64(orgCertificate.serialize()),
      memberCertificate: b64(memberCertificate.serialize()),
    };
    if (result.organisationSerialNonMinimal || result.memberSerialNonMinimal
      || round % options.bundleEvery === 0) {
      const memberIdBundle = new MemberIdBundle(chain, orgCertificate, memberCertificate);
      const encapsulate = round % 2 === 0;
      const sign = async (signer, privateKey) => b64((await SignatureBundle.sign(
        plaintext, options.serviceOid, signer, privateKey, signatureEnd,
        { startDate: start, shouldEncapsulatePlaintext: encapsulate },
      )).serialise());
      const orgSigner = new OrganisationSigner(chain, orgCertificate, memberName);
      result.bundles = {
        encapsulated: encapsulate,
        memberIdBundle: b64(memberIdBundle.serialise()),
        memberSignature: await sign(memberIdBundle, memberKey.pair.privateKey),
        organisationSignature: await sign(orgSigner, orgKey.pair.privateKey),
      };
    }
    rounds.push(result);
  }
  return { rounds };
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

const COMMANDS = {
  generate: (command) => generate(command.options),
  verify: async (command) => ({ results: await Promise.all(command.items.map(verifyOne)) }),
  bulk: (command) => bulk(command.options),
  benchmark: (command) => benchmark(command.options),
};

// Reads one JSON command on stdin, runs `commands[command.command]` and writes its answer.
export async function serve(commands) {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const command = JSON.parse(Buffer.concat(chunks).toString());
  const handler = commands[command.command];
  if (handler === undefined) throw new Error(`Unknown command ${command.command}`);
  process.stdout.write(JSON.stringify(await handler(command)));
}

if (realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await serve(COMMANDS);
}
