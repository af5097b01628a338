// Builds and signs an AccountRequestSignature the way Letro for Android does: an RSA-PSS key
// whose SubjectPublicKeyInfo carries its parameters (hash, MGF1 hash, salt length), signing the
// DER of AccountRequest as a universal SEQUENCE. Node's own crypto only: no npm packages.
//
// stdin: {"userName": "...", "locale": "...", "hash": "sha256", "modulusLength": 2048}
// stdout: {"request": <base64 DER AccountRequestSignature>, "publicKey": <base64 SPKI DER>}
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

const SALT_LENGTHS = { sha256: 32, sha384: 48, sha512: 64 };

function derLength(length) {
  if (length < 0x80) return Buffer.from([length]);
  const bytes = [];
  for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag, contents) {
  return Buffer.concat([Buffer.from([tag]), derLength(contents.length), contents]);
}

function contentsOf(der) {
  const first = der[1];
  const headerLength = first < 0x80 ? 2 : 2 + (first & 0x7f);
  return der.subarray(headerLength);
}

const input = JSON.parse(readFileSync(0, 'utf8'));
const hash = input.hash ?? 'sha256';
const { publicKey, privateKey } = generateKeyPairSync('rsa-pss', {
  modulusLength: input.modulusLength ?? 2048,
  hashAlgorithm: hash,
  mgf1HashAlgorithm: hash,
  saltLength: SALT_LENGTHS[hash],
});
const spki = publicKey.export({ type: 'spki', format: 'der' });
const requestContents = Buffer.concat([
  tlv(0x80, Buffer.from(input.userName, 'utf8')),
  tlv(0x81, Buffer.from(input.locale, 'ascii')),
  tlv(0xa2, contentsOf(spki)),
]);
const request = tlv(0x30, requestContents);
// A null algorithm makes Node use the key's own RSA-PSS parameters.
const signature = sign(null, request, privateKey);
const signed = tlv(
  0x30,
  Buffer.concat([
    tlv(0xa0, requestContents),
    tlv(0x81, Buffer.concat([Buffer.from([0]), signature])),
  ]),
);
process.stdout.write(
  JSON.stringify({ request: signed.toString('base64'), publicKey: spki.toString('base64') }),
);
