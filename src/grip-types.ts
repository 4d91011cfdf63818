/** The public shapes of `options.grip`; kept apart from the code that uses `@fanoutio/grip`, so public types do not depend on its declarations. */

/** A GRIP proxy's control endpoint, as `@fanoutio/grip` takes it. */
export interface GripProxyConfig {
  control_uri: string;
  control_iss?: string;
  key?: string | Uint8Array;
  verify_iss?: string;
  verify_key?: string | Uint8Array;
}

/**
 * The part of a `@fanoutio/grip` publisher client this library uses. Declared
 * here so the public types do not pull in `@fanoutio/grip`'s (which need the DOM lib).
 */
export interface GripPublisherClientLike {
  publish(channel: string, item: never): Promise<void>;
  getAuth?(): { buildHeader(): Promise<string> } | undefined;
  getVerifyIss?(): string | undefined;
  getVerifyKey?(): unknown;
}

/** The part of `@fanoutio/grip`'s `Publisher` this library uses. */
export interface GripPublisherLike {
  clients: GripPublisherClientLike[];
}

/** Every form `options.grip` takes: a GRIP_URL, a config, several configs, or a Publisher. */
export type GripOption = string | GripProxyConfig | ReadonlyArray<string | GripProxyConfig> | GripPublisherLike;
