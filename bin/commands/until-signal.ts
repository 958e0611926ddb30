/** Waiting for Ctrl-C (or SIGTERM) in a long-running `canon` command, then stopping it once. */

/** Resolves once `stop` has finished after the first SIGINT or SIGTERM; `name` prefixes the messages. */
export function untilSignal(name: string, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolveStop) => {
    let stopping = false;
    const onSignal = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${name}: ${signal}: stopping …`);
      stop().then(
        () => {
          console.log(`${name}: stopped`);
          resolveStop();
        },
        (error: unknown) => {
          console.error(`${name}: stopping failed: ${(error as Error).message}`);
          resolveStop();
        },
      );
    };
    process.once("SIGINT", () => onSignal("SIGINT"));
    process.once("SIGTERM", () => onSignal("SIGTERM"));
  });
}
