/**
 * The error answers the AWS KMS emulator gives, in the service's shape: HTTP
 * status 400 (500 for `KMSInternalException`, 503 for a service fault), a JSON
 * 1.1 body `{"__type": "<Type>", "message": "..."}` and an `x-amzn-RequestId`
 * header. Types and messages as AWS KMS returns them.
 * @module
 */

/** One error answer. */
export class AwsApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** `__type` of the body, e.g. `NotFoundException`. */
  readonly type: string;
  /**
   * @param status - HTTP status.
   * @param type - the error type.
   * @param message - the `message` member (never a secret).
   */
  constructor(status: number, type: string, message: string) {
    super(message);
    this.name = 'AwsApiError';
    this.status = status;
    this.type = type;
  }
}

const e = (status: number, type: string, message: string) => new AwsApiError(status, type, message);

/** The emulator's error answers, by cause. */
export const awsErrors = Object.freeze({
  missingToken: () => e(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token'),
  incompleteSignature: (what: string) => e(400, 'IncompleteSignatureException', what),
  unrecognizedClient: () => e(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.'),
  invalidSignature: (what: string) => e(400, 'InvalidSignatureException', what),
  signatureMismatch: (canonical: string, toSign: string) =>
    e(
      400,
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n' +
        `The Canonical String for this request should have been\n'${canonical}'\n\nThe String-to-Sign should have been\n'${toSign}'\n`,
    ),
  unknownOperation: () => e(400, 'UnknownOperationException', ''),
  serialization: (what = 'Start of structure or map found where not expected.') => e(400, 'SerializationException', what),
  validation: (what: string) => e(400, 'ValidationException', what),
  notFound: (what: string) => e(400, 'NotFoundException', what),
  alreadyExists: (what: string) => e(400, 'AlreadyExistsException', what),
  disabled: (arn: string) => e(400, 'DisabledException', `${arn} is disabled.`),
  invalidState: (arn: string) => e(400, 'KMSInvalidStateException', `${arn} is pending deletion.`),
  invalidCiphertext: () => e(400, 'InvalidCiphertextException', ''),
  incorrectKey: () => e(400, 'IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.'),
  internal: () => e(500, 'KMSInternalException', 'An internal error occurred.'),
  tooLarge: () => e(413, 'SerializationException', 'Request body too large.'),
});
