/**
 * The error answers the emulator gives, each with the HTTP status and message
 * of the KMS 2016-01-20 error tables ("Common error codes", the operations'
 * own tables) or, for signing and replay failures, of Alibaba Cloud's API
 * gateway.
 * @module
 */

/** An error answer: HTTP status, KMS `Code`, `Message`. */
export class KmsApiError extends Error {
  /**
   * @param status - HTTP status.
   * @param code - KMS error code.
   * @param message - the `Message` member.
   */
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'KmsApiError';
  }
}

/** Builders for every error the emulator gives. */
export const kmsErrors = Object.freeze({
  missingParameter: (name: string) => new KmsApiError(400, 'MissingParameter', `The parameter "${name}" is needed but not provided.`),
  invalidParameter: (name: string) => new KmsApiError(400, 'InvalidParameter', `The specified parameter "${name}" is not valid.`),
  keyNotFound: () => new KmsApiError(404, 'Forbidden.KeyNotFound', 'The specified Key is not found.'),
  aliasNotFound: () => new KmsApiError(404, 'Forbidden.AliasNotFound', 'The specified Alias is not found.'),
  disabled: () => new KmsApiError(409, 'Rejected.Disabled', 'The request was rejected because the key state is Disabled.'),
  pendingDeletion: () =>
    new KmsApiError(409, 'Rejected.PendingDeletion', 'The request was rejected because the key state is PendingDeletion.'),
  incompleteSignature: (detail?: string) =>
    new KmsApiError(
      400,
      'IncompleteSignature',
      `The request signature does not conform to Alibaba Cloud standards.${detail ? ` ${detail}` : ''}`,
    ),
  signatureDoesNotMatch: (stringToSign?: string) =>
    new KmsApiError(
      400,
      'SignatureDoesNotMatch',
      `Specified signature is not matched with our calculation.${stringToSign !== undefined ? ` server string to sign is:${stringToSign}` : ''}`,
    ),
  accessKeyNotFound: () =>
    new KmsApiError(404, 'InvalidAccessKeyId.NotFound', 'The AccessKey ID provided does not exist in our records.'),
  illegalTimestamp: (name = 'Timestamp') =>
    new KmsApiError(400, 'IllegalTimestamp', `The input parameter "${name}" that is mandatory for processing this request is not supplied.`),
  expiredTimestamp: () => new KmsApiError(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value is expired.'),
  nonceUsed: () => new KmsApiError(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.'),
  securityTokenMismatch: () =>
    new KmsApiError(400, 'InvalidSecurityToken.Mismatch', 'Specified SecurityToken mismatch with the AccessKey.'),
  invalidVersion: () => new KmsApiError(400, 'InvalidVersion', 'Specified parameter Version is not valid.'),
  actionNotFound: () => new KmsApiError(404, 'InvalidAction.NotFound', 'Specified api is not found, please check your url and method.'),
  unsupportedMethod: () => new KmsApiError(403, 'UnsupportedHTTPMethod', 'This http method is not supported.'),
  tooLarge: () => new KmsApiError(413, 'RequestEntityTooLarge', 'The request body is too large.'),
  dryRun: () => new KmsApiError(400, 'DryRunOperation', 'Request validation has been passed with DryRun flag set.'),
  badRequest: () => new KmsApiError(400, 'InvalidParameter', 'The request could not be read.'),
  headersTooLarge: () => new KmsApiError(431, 'InvalidParameter', 'The request headers are too large.'),
  internalFailure: () => new KmsApiError(500, 'InternalFailure', 'Internal Failure.'),
});
