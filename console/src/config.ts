// Where the console finds the admin API and the sign-in: /console/config.json, written by the
// local runtime as it starts, and in AWS by `make publish-console` from the stack's outputs.
export interface ConsoleConfig {
  api_url: string;
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
