// Starts the mock provider on loopback for the whole run and hands its port to the Worker.
import { startMockProvider } from "./mock-provider.mjs";

export default async function setup({ provide }) {
  const mock = await startMockProvider();
  provide("mockProviderPort", mock.port);
  return async () => mock.close();
}
