package dev.filex.harness;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.minikdc.MiniKdc;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Kerberos side of the secure test cluster ({@code --secure}): a MiniKdc on 127.0.0.1 with
 * an ephemeral TCP port, the principals and keytabs, and the configuration keys that make the
 * mini clusters Kerberized.
 *
 * <p>One service principal, {@code hdfs/localhost}, serves every daemon (as Hadoop's own
 * SaslDataTransferTestCase does): in one JVM the NameNode's keytab login becomes the JVM-wide
 * login user, and MiniYARNCluster's ResourceManager and NodeManagers skip their own logins, so
 * every RPC server advertises {@code hdfs/localhost}. {@code HTTP/localhost} is in the same
 * keytab for the web endpoints. Two users: {@code filex} (the submitter) and {@code other}
 * (for negative tests), each with its own keytab.
 *
 * <p>Files, all under the conf directory: {@code krb5.conf} (for MIT clients: TCP only, no DNS,
 * no reverse lookups), {@code service.keytab}, {@code filex.keytab}, {@code other.keytab}.
 */
final class Kerberos {
  private static final Logger LOG = LoggerFactory.getLogger(Kerberos.class);

  static final String SERVICE = "hdfs/localhost";
  static final String HTTP = "HTTP/localhost";
  static final String SUBMITTER = "filex";
  static final String OTHER = "other";
  static final String PROTECTIONS = "authentication,integrity,privacy";

  /** Delegation-token lifetimes with --short-tokens (ms). Above hdfs-native's 60 s floor. */
  static final long SHORT_RENEW_INTERVAL_MS = 30_000;
  static final long SHORT_MAX_LIFETIME_MS = 300_000;
  static final long SHORT_KEY_UPDATE_INTERVAL_MS = 60_000;

  private final MiniKdc kdc;
  private final File serviceKeytab;
  private final File submitterKeytab;
  private final File otherKeytab;
  private final File krb5Conf;

  private Kerberos(MiniKdc kdc, Path confDir) {
    this.kdc = kdc;
    this.serviceKeytab = confDir.resolve("service.keytab").toFile();
    this.submitterKeytab = confDir.resolve("filex.keytab").toFile();
    this.otherKeytab = confDir.resolve("other.keytab").toFile();
    this.krb5Conf = confDir.resolve("krb5.conf").toFile();
  }

  /**
   * Starts the KDC (which sets {@code java.security.krb5.conf} for this JVM, so this must come
   * before anything touches UGI), creates the principals and writes the keytabs and krb5.conf.
   */
  static Kerberos start(Path workDir, Path confDir) throws Exception {
    Path kdcDir = workDir.resolve("kdc");
    Files.createDirectories(kdcDir);
    Files.createDirectories(confDir);
    Properties props = MiniKdc.createConf();
    props.setProperty(MiniKdc.KDC_BIND_ADDRESS, FilexCluster.LOOPBACK);
    props.setProperty(MiniKdc.KDC_PORT, "0");
    props.setProperty(MiniKdc.TRANSPORT, "TCP");
    MiniKdc kdc = new MiniKdc(props, kdcDir.toFile());
    kdc.start();
    Kerberos k = new Kerberos(kdc, confDir);
    // createPrincipal overwrites the keytab: one call per keytab, with all its principals.
    kdc.createPrincipal(k.serviceKeytab, SERVICE, HTTP);
    kdc.createPrincipal(k.submitterKeytab, SUBMITTER);
    kdc.createPrincipal(k.otherKeytab, OTHER);
    k.writeKrb5Conf();
    LOG.info("MiniKdc up: realm {} at {}:{}", kdc.getRealm(), kdc.getHost(), kdc.getPort());
    return k;
  }

  String realm() {
    return kdc.getRealm();
  }

  String principal(String name) {
    return name + "@" + realm();
  }

  /** krb5.conf for MIT clients (kinit, libgssapi_krb5): the KDC over TCP, nothing from DNS. */
  private void writeKrb5Conf() throws IOException {
    String realm = realm();
    String text =
        "# Written by the filex test cluster (integration/harness); valid while it runs.\n"
            + "[libdefaults]\n"
            + "  default_realm = " + realm + "\n"
            + "  udp_preference_limit = 1\n"
            + "  dns_lookup_kdc = false\n"
            + "  dns_lookup_realm = false\n"
            + "  dns_canonicalize_hostname = false\n"
            + "  rdns = false\n"
            + "  forwardable = true\n"
            + "[realms]\n"
            + "  " + realm + " = {\n"
            + "    kdc = " + FilexCluster.LOOPBACK + ":" + kdc.getPort() + "\n"
            + "  }\n"
            + "[domain_realm]\n"
            + "  localhost = " + realm + "\n";
    Files.write(krb5Conf.toPath(), text.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * The keys of a Kerberized cluster. {@code shortTokens} makes delegation tokens short-lived
   * (renew interval 30 s, maximum lifetime 5 min) for renewal tests.
   */
  void configure(Configuration conf, boolean shortTokens) {
    String service = principal(SERVICE);
    String http = principal(HTTP);
    String keytab = serviceKeytab.getAbsolutePath();
    conf.set("hadoop.security.authentication", "kerberos");
    conf.setBoolean("hadoop.security.authorization", true);
    conf.set("hadoop.rpc.protection", PROTECTIONS);
    // Java clients retry SASL on a replay-cache hit; MiniDFSCluster tests do the same.
    conf.setInt("ipc.client.connect.max.retries.on.sasl", 10);

    conf.set("dfs.namenode.kerberos.principal", service);
    conf.set("dfs.namenode.keytab.file", keytab);
    conf.set("dfs.datanode.kerberos.principal", service);
    conf.set("dfs.datanode.keytab.file", keytab);
    conf.set("dfs.web.authentication.kerberos.principal", http);
    conf.set("dfs.web.authentication.kerberos.keytab", keytab);
    conf.setBoolean("dfs.block.access.token.enable", true);
    conf.set("dfs.data.transfer.protection", PROTECTIONS);
    // SASL on data transfer instead of privileged ports, and no TLS for the web endpoints.
    conf.setBoolean("ignore.secure.ports.for.testing", true);

    conf.set(YarnConfiguration.RM_PRINCIPAL, service);
    conf.set(YarnConfiguration.RM_KEYTAB, keytab);
    conf.set(YarnConfiguration.NM_PRINCIPAL, service);
    conf.set(YarnConfiguration.NM_KEYTAB, keytab);
    conf.set(YarnConfiguration.RM_WEBAPP_SPNEGO_USER_NAME_KEY, http);
    conf.set(YarnConfiguration.RM_WEBAPP_SPNEGO_KEYTAB_FILE_KEY, keytab);
    conf.set(YarnConfiguration.NM_WEBAPP_SPNEGO_USER_NAME_KEY, http);
    conf.set(YarnConfiguration.NM_WEBAPP_SPNEGO_KEYTAB_FILE_KEY, keytab);

    if (shortTokens) {
      conf.setLong("dfs.namenode.delegation.token.renew-interval", SHORT_RENEW_INTERVAL_MS);
      conf.setLong("dfs.namenode.delegation.token.max-lifetime", SHORT_MAX_LIFETIME_MS);
      conf.setLong("dfs.namenode.delegation.key.update-interval", SHORT_KEY_UPDATE_INTERVAL_MS);
      conf.setLong(YarnConfiguration.RM_DELEGATION_TOKEN_RENEW_INTERVAL_KEY,
          SHORT_RENEW_INTERVAL_MS);
      conf.setLong(YarnConfiguration.RM_DELEGATION_TOKEN_MAX_LIFETIME_KEY, SHORT_MAX_LIFETIME_MS);
      conf.setLong(YarnConfiguration.RM_DELEGATION_KEY_UPDATE_INTERVAL_KEY,
          SHORT_KEY_UPDATE_INTERVAL_MS);
    }
  }

  /** Logs the JVM in as the service principal, before any daemon starts. */
  void loginService(Configuration conf) throws IOException {
    UserGroupInformation.setConfiguration(conf);
    UserGroupInformation.loginUserFromKeytab(principal(SERVICE), serviceKeytab.getAbsolutePath());
    LOG.info("logged in as {}", UserGroupInformation.getLoginUser());
  }

  /** The cluster.env lines of a secure cluster. */
  Map<String, String> envFacts() {
    Map<String, String> facts = new LinkedHashMap<>();
    facts.put("FILEX_SECURE", "1");
    facts.put("FILEX_REALM", realm());
    facts.put("FILEX_KRB5_CONFIG", krb5Conf.getAbsolutePath());
    facts.put("FILEX_SERVICE_PRINCIPAL", principal(SERVICE));
    facts.put("FILEX_PRINCIPAL", principal(SUBMITTER));
    facts.put("FILEX_KEYTAB", submitterKeytab.getAbsolutePath());
    facts.put("FILEX_OTHER_PRINCIPAL", principal(OTHER));
    facts.put("FILEX_OTHER_KEYTAB", otherKeytab.getAbsolutePath());
    return facts;
  }

  /** Home directories of the two users (the caller runs as the HDFS superuser). */
  static String[] users() {
    return new String[] {SUBMITTER, OTHER};
  }

  void stop() {
    kdc.stop();
  }

}
