// Node-RED settings for benchmarks/throughput.py: the flow in flows.json, no editor, quiet logs.
// Started as: node node_modules/node-red/red.js --settings settings.js --userDir <tmp> --port <P>
// with SINK_ORDERS_URL (the sink's /orders URL) and NODE_RED_FLOW_FILE in the environment.
module.exports = {
    flowFile: process.env.NODE_RED_FLOW_FILE || "flows.json",
    flowFilePretty: true,
    credentialSecret: false,
    httpAdminRoot: false,          // no editor, no admin API: only the flow's http in nodes
    httpNodeRoot: "/",
    disableEditor: true,
    logging: { console: { level: "warn", metrics: false, audit: false } },
    functionExternalModules: false,
    externalModules: { autoInstall: false },
    contextStorage: { default: { module: "memory" } },
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    telemetry: { enabled: false },
};
