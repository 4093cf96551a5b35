// Where the console finds the admin API, the public routes and the sign-in: /console/config.json,
// written by the local runtime as it starts, and in AWS by `make publish-console` from the
// stack's outputs.
export interface ConsoleConfig {
  /** The admin API the console calls: execute-api, whatever domain fronts the public routes. */
  api_url: string;
  /** Where a team's website reaches Tsunagu (/t.js, /t/events, /forms/*): its own domain when
   * the stack's PublicBaseUrl is set, else the API's. The tracking snippet and a form's embed
   * code name it; the console itself never calls it. */
  public_url: string;
  cognito_url: string;
  client_id: string;
  region: string;
}

let loaded: Promise<ConsoleConfig> | null = null;

export function config(): Promise<ConsoleConfig> {
  if (loaded === null) {
    loaded = fetch(`${import.meta.env.BASE_URL}config.json`, { cache: "no-store" }).then(
      async (response) => {
        if (!response.ok) throw new Error(`config.json: ${response.status}`);
        return (await response.json()) as ConsoleConfig;
      },
    );
  }
  return loaded;
}
