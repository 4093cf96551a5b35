import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served under /console (the local runtime, and CloudFront in AWS). Each screen is its own
// chunk: the first screen loads only what signing in and the lead list need.
export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 600,
  },
});
