// The browser half of a passkey ceremony, run by rx.call_script (see state/passkeys.py).
// Called as (kind, options): kind "create" or "get", options the server's publicKey
// options as JSON, binary values in base64url. Resolves, never rejects, to what the
// backend handler receives: {credential: <the PublicKeyCredential, binary in base64url>}
// or {error: <the DOMException's name>}.
async (kind, options) => {
  const bytes = (text) =>
    Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const text = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return { error: "NotSupportedError" };
  }
  const publicKey = { ...options, challenge: bytes(options.challenge) };
  try {
    if (kind === "create") {
      publicKey.user = { ...options.user, id: bytes(options.user.id) };
      publicKey.excludeCredentials = withIds(options.excludeCredentials);
      const made = await navigator.credentials.create({ publicKey });
      const response = made.response;
      return {
        credential: {
          id: made.id,
          rawId: text(made.rawId),
          type: made.type,
          authenticatorAttachment: made.authenticatorAttachment,
          response: {
            clientDataJSON: text(response.clientDataJSON),
            attestationObject: text(response.attestationObject),
            transports: response.getTransports ? response.getTransports() : [],
          },
        },
      };
    }
    publicKey.allowCredentials = withIds(options.allowCredentials);
    const used = await navigator.credentials.get({ publicKey });
    const response = used.response;
    return {
      credential: {
        id: used.id,
        rawId: text(used.rawId),
        type: used.type,
        authenticatorAttachment: used.authenticatorAttachment,
        response: {
          clientDataJSON: text(response.clientDataJSON),
          authenticatorData: text(response.authenticatorData),
          signature: text(response.signature),
          userHandle: response.userHandle ? text(response.userHandle) : null,
        },
      },
    };
  } catch (error) {
    return { error: (error && error.name) || "Error" };
  }
}
