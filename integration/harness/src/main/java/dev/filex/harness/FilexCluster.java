package dev.filex.harness;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.protocol.DatanodeInfo;
import org.apache.hadoop.hdfs.protocol.HdfsConstants.DatanodeReportType;
import org.apache.hadoop.net.NetUtils;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

/**
 * The filex test cluster: a MiniDFSCluster and a MiniYARNCluster in one JVM, sharing one
 * Configuration, bound to 127.0.0.1 with dynamic ports.
 *
 * <p>Once both are up it writes the effective configuration as core-site.xml, hdfs-site.xml and
 * yarn-site.xml (split by key prefix: dfs.*, yarn.*, the rest; variables resolved; empty values
 * left out; ResourceManager and NameNode addresses as 127.0.0.1:real-port) plus a shell-style
 * cluster.env into the conf directory, then prints exactly one line on stdout:
 *
 * <pre>FILEX-CLUSTER READY nn=hdfs://127.0.0.1:P webhdfs=http://127.0.0.1:P rm=127.0.0.1:P
 *     scheduler=127.0.0.1:P rmweb=http://127.0.0.1:P</pre>
 *
 * (one line). If start-up fails it prints {@code FILEX-CLUSTER FAILED <reason>} and exits 1.
 * It stops on SIGTERM/SIGINT (shutdown hook) and, unless {@code --detached}, when stdin closes.
 * All logging goes to stderr.
 *
 * <p>Usage: {@code FilexCluster --conf-dir DIR [--work-dir DIR] [--detached]
 * [--datanodes N] [--nodemanagers N] [--secure [--short-tokens]] [-D key=value]...}
 *
 * <p>With {@code --secure} the cluster is Kerberized (see {@link Kerberos}): a MiniKdc starts
 * first, and cluster.env also names the realm, krb5.conf and the users' principals and keytabs.
 *
 * <p>All state (DFS name/data dirs, NodeManager local and log dirs) lives under the work
 * directory (default: the current directory).
 */
public final class FilexCluster {
  private static final Logger LOG = LoggerFactory.getLogger(FilexCluster.class);

  /** First words of the line scripts wait for. */
  static final String READY_PREFIX = "FILEX-CLUSTER READY";
  static final String FAILED_PREFIX = "FILEX-CLUSTER FAILED";

  static final String LOOPBACK = "127.0.0.1";
  static final String YARN_CLUSTER_NAME = "filex";
  static final long BLOCK_SIZE = 16L * 1024 * 1024;
  static final int NM_MEMORY_MB = 4096;
  static final int NM_VCORES = 8;
  static final long RM_ADDRESS_WAIT_MS = 60_000;
  static final long NM_CONNECT_WAIT_MS = 60_000;

  /** Rack of each DataNode, and a host name (resolving to loopback) the rack map keys on. */
  static final String[] DATANODE_RACKS = {"/rack-a", "/rack-a", "/rack-b"};
  static final String[] DATANODE_HOSTS = {"localhost", "localhost", LOOPBACK};

  /** Extra CapacityScheduler queue besides "default", for --queue tests. */
  static final String SECOND_QUEUE = "batch";

  /** ResourceManager endpoints rewritten from "localhost:port" to "127.0.0.1:port". */
  static final String[] RM_ADDRESS_KEYS = {
    YarnConfiguration.RM_ADDRESS,
    YarnConfiguration.RM_SCHEDULER_ADDRESS,
    YarnConfiguration.RM_RESOURCE_TRACKER_ADDRESS,
    YarnConfiguration.RM_ADMIN_ADDRESS,
    YarnConfiguration.RM_WEBAPP_ADDRESS,
  };

  private final Options options;
  private final YarnConfiguration conf;
  private volatile MiniDFSCluster dfs;
  private volatile MiniYARNCluster yarn;
  private volatile Kerberos kerberos;
  private volatile boolean stopped;

  private FilexCluster(Options options) {
    this.options = options;
    this.conf = new YarnConfiguration(new HdfsConfiguration());
  }

  public static void main(String[] args) {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("error: " + e.getMessage());
      System.err.println(Options.USAGE);
      System.exit(2);
      return;
    }
    FilexCluster cluster = new FilexCluster(options);
    // Stop on TERM/INT before the JVM starts shutting down: Hadoop's own shutdown hooks make
    // a DataNode shutdown inside a JVM shutdown hook fail ("Shutdown in progress"). The plain
    // shutdown hook stays as a fallback for other exits.
    for (String name : new String[] {"TERM", "INT", "HUP"}) {
      try {
        Signal.handle(new Signal(name), sig -> cluster.stopAndExit(0, "SIG" + sig.getName()));
      } catch (IllegalArgumentException e) {
        LOG.warn("cannot handle SIG{}: {}", name, e.getMessage());
      }
    }
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::stop, "filex-cluster-shutdown"));
    PrintStream out = System.out;
    try {
      cluster.start();
      String ready = cluster.publish();
      out.println(ready);
      out.flush();
    } catch (Throwable t) {
      LOG.error("filex test cluster failed to start", t);
      out.println(FAILED_PREFIX + " " + oneLine(t));
      out.flush();
      cluster.stopAndExit(1, "start-up failure");
    }
    try {
      if (options.detached) {
        Thread.currentThread().join();
      } else {
        // Stop when whoever started us goes away (stdin closes).
        while (System.in.read() != -1) {
          // discard
        }
        cluster.stopAndExit(0, "stdin closed");
      }
    } catch (InterruptedException | IOException e) {
      cluster.stopAndExit(0, e.toString());
    }
  }

  private void stopAndExit(int status, String why) {
    LOG.info("stopping the filex test cluster: {}", why);
    stop();
    System.exit(status);
  }

  private static String oneLine(Throwable t) {
    String msg = t.getClass().getName() + ": " + t.getMessage();
    return msg.replace('\n', ' ').replace('\r', ' ');
  }

  private void configure() throws IOException {
    File work = options.workDir.toFile();
    Files.createDirectories(options.workDir);

    // MiniYARNCluster puts its NodeManager dirs under GenericTestUtils.getTestDir(), which
    // honours this property (default: target/test/data relative to the current directory).
    System.setProperty("test.build.data", new File(work, "test-data").getAbsolutePath());
    conf.set("hadoop.tmp.dir", new File(work, "tmp").getAbsolutePath());
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, new File(work, "dfs").getAbsolutePath());

    // HDFS.
    conf.setLong("dfs.blocksize", BLOCK_SIZE);
    conf.setInt("dfs.replication", Math.min(3, options.datanodes));
    conf.setBoolean("dfs.webhdfs.enabled", true);
    // The rack map needs host names that are not the reverse lookup of 127.0.0.1.
    conf.setBoolean("dfs.namenode.datanode.registration.ip-hostname-check", false);
    conf.setInt("dfs.namenode.safemode.extension", 0);

    // YARN: addresses on the loopback interface, generous nodes, no resource policing.
    conf.set(YarnConfiguration.RM_HOSTNAME, LOOPBACK);
    conf.setInt(YarnConfiguration.YARN_MINICLUSTER_NM_PMEM_MB, NM_MEMORY_MB);
    conf.setInt(YarnConfiguration.NM_PMEM_MB, NM_MEMORY_MB);
    conf.setInt(YarnConfiguration.NM_VCORES, NM_VCORES);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 128);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, NM_MEMORY_MB);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_VCORES, NM_VCORES);
    conf.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
    conf.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, false);
    conf.setFloat(
        YarnConfiguration.NM_MAX_PER_DISK_UTILIZATION_PERCENTAGE, 100.0f);
    // Keep container directories and logs around for a day for debugging.
    conf.setInt(YarnConfiguration.DEBUG_NM_DELETE_DELAY_SEC, 86_400);
    conf.setBoolean(YarnConfiguration.YARN_MINICLUSTER_FIXED_PORTS, false);

    // CapacityScheduler queues: hadoop-client-minicluster drops capacity-scheduler.xml.
    conf.set(
        YarnConfiguration.RM_SCHEDULER,
        "org.apache.hadoop.yarn.server.resourcemanager.scheduler.capacity.CapacityScheduler");
    String cs = "yarn.scheduler.capacity.";
    conf.set(cs + "root.queues", "default," + SECOND_QUEUE);
    conf.set(cs + "root.acl_submit_applications", "*");
    conf.set(cs + "root.acl_administer_queue", "*");
    setQueue(cs + "root.default.", 75);
    setQueue(cs + "root." + SECOND_QUEUE + ".", 25);
    conf.setFloat(cs + "maximum-am-resource-percent", 0.5f);
    // No delay scheduling: every NodeManager is "localhost", so waiting buys nothing.
    conf.setInt(cs + "node-locality-delay", -1);

    if (kerberos != null) {
      kerberos.configure(conf, options.shortTokens);
    }
    for (Map.Entry<String, String> e : options.overrides.entrySet()) {
      LOG.info("override {}={}", e.getKey(), e.getValue());
      conf.set(e.getKey(), e.getValue());
    }
  }

  private void setQueue(String prefix, int capacity) {
    conf.setInt(prefix + "capacity", capacity);
    conf.setInt(prefix + "maximum-capacity", 100);
    conf.setInt(prefix + "user-limit-factor", 100 / capacity + 1);
    conf.set(prefix + "state", "RUNNING");
    conf.set(prefix + "acl_submit_applications", "*");
    conf.set(prefix + "acl_administer_queue", "*");
  }

  /** The keys a Java client of the secure cluster must have whatever Configuration it builds. */
  private static final String[][] CLIENT_SECURITY_KEYS = {
    {"core-site.xml", "hadoop.security.authentication"},
    {"core-site.xml", "hadoop.rpc.protection"},
    {"hdfs-site.xml", "dfs.data.transfer.protection"},
    {"hdfs-site.xml", "dfs.encrypt.data.transfer.cipher.suites"},
  };

  /**
   * Writes the client security keys into {@code <work-dir>/site}, which scripts/cluster.sh puts
   * on this JVM's classpath. The NodeManager's localizer runs in this JVM (DefaultContainerExecutor)
   * and reads HDFS through a fresh {@code new Configuration()}, which sees only the classpath's
   * site files: without {@code dfs.data.transfer.protection} there it reads blocks without the
   * SASL handshake, and a protecting DataNode refuses it (InvalidMagicNumberException), so
   * containers of a Kerberized cluster could not be localized.
   */
  private void writeClasspathSite() throws IOException {
    Path site = options.workDir.resolve("site");
    Files.createDirectories(site);
    Map<String, Configuration> files = new LinkedHashMap<>();
    for (String[] key : CLIENT_SECURITY_KEYS) {
      String value = conf.get(key[1]);
      if (value != null && !value.isEmpty()) {
        files.computeIfAbsent(key[0], k -> new Configuration(false)).set(key[1], value);
      }
    }
    for (Map.Entry<String, Configuration> f : files.entrySet()) {
      try (OutputStream os = new FileOutputStream(site.resolve(f.getKey()).toFile())) {
        f.getValue().writeXml(os);
      }
    }
  }

  private void start() throws Exception {
    if (options.secure) {
      // The KDC first: starting it points this JVM's Kerberos at it.
      kerberos = Kerberos.start(options.workDir, options.confDir);
    }
    configure();
    if (kerberos != null) {
      kerberos.loginService(conf);
      writeClasspathSite();
    }
    long t0 = System.nanoTime();

    String[] racks = new String[options.datanodes];
    String[] hosts = new String[options.datanodes];
    for (int i = 0; i < options.datanodes; i++) {
      racks[i] = DATANODE_RACKS[i % DATANODE_RACKS.length];
      hosts[i] = DATANODE_HOSTS[i % DATANODE_HOSTS.length];
    }
    dfs =
        new MiniDFSCluster.Builder(conf)
            .numDataNodes(options.datanodes)
            .racks(racks)
            .hosts(hosts)
            .nameNodePort(0)
            .nameNodeHttpPort(0)
            .format(true)
            .build();
    dfs.waitClusterUp();
    dfs.waitActive();
    int nnPort = dfs.getNameNodePort();
    conf.set(FileSystem.FS_DEFAULT_NAME_KEY, "hdfs://" + LOOPBACK + ":" + nnPort);
    prepareHdfs();
    LOG.info("MiniDFSCluster up after {} ms", (System.nanoTime() - t0) / 1_000_000);

    yarn = new MiniYARNCluster(YARN_CLUSTER_NAME, 1, options.nodemanagers, 1, 1);
    yarn.init(conf);
    yarn.start();
    waitForRmAddresses();
    if (!yarn.waitForNodeManagersToConnect(NM_CONNECT_WAIT_MS)) {
      throw new IOException(
          "NodeManagers did not register with the ResourceManager within "
              + NM_CONNECT_WAIT_MS + " ms");
    }
    LOG.info("MiniYARNCluster up after {} ms", (System.nanoTime() - t0) / 1_000_000);
  }

  /** World-writable /tmp and a home directory for the current user, as on a real cluster. */
  private void prepareHdfs() throws IOException {
    DistributedFileSystem fs = dfs.getFileSystem();
    org.apache.hadoop.fs.Path tmp = new org.apache.hadoop.fs.Path("/tmp");
    fs.mkdirs(tmp);
    fs.setPermission(tmp, new FsPermission((short) 01777));
    String user = System.getProperty("user.name");
    org.apache.hadoop.fs.Path home = new org.apache.hadoop.fs.Path("/user/" + user);
    fs.mkdirs(home);
    if (kerberos != null) {
      // The JVM is the HDFS superuser here (the service principal's short name).
      for (String u : Kerberos.users()) {
        org.apache.hadoop.fs.Path h = new org.apache.hadoop.fs.Path("/user/" + u);
        fs.mkdirs(h);
        fs.setOwner(h, u, u);
      }
    }
    for (DatanodeInfo dn : fs.getDataNodeStats(DatanodeReportType.LIVE)) {
      LOG.info(
          "DataNode {} host={} rack={} http={}",
          dn.getXferAddr(),
          dn.getHostName(),
          dn.getNetworkLocation(),
          dn.getInfoAddr());
    }
  }

  /**
   * MiniYARNCluster.start() can return before the RM has written its bound ports back into
   * the configuration; wait until the addresses clients need carry real ports.
   */
  private void waitForRmAddresses() throws Exception {
    long deadline = System.currentTimeMillis() + RM_ADDRESS_WAIT_MS;
    String[] keys = {
      YarnConfiguration.RM_ADDRESS,
      YarnConfiguration.RM_SCHEDULER_ADDRESS,
      YarnConfiguration.RM_WEBAPP_ADDRESS,
    };
    while (true) {
      boolean all = true;
      for (String key : keys) {
        if (portOf(yarn.getConfig().get(key)) == 0) {
          all = false;
        }
      }
      if (all) {
        return;
      }
      if (System.currentTimeMillis() > deadline) {
        throw new IOException(
            "ResourceManager addresses still without ports after "
                + RM_ADDRESS_WAIT_MS + " ms: " + yarn.getConfig().get(YarnConfiguration.RM_ADDRESS));
      }
      Thread.sleep(100);
    }
  }

  private static int portOf(String hostPort) {
    if (hostPort == null || hostPort.isEmpty()) {
      return 0;
    }
    InetSocketAddress a = NetUtils.createSocketAddr(hostPort);
    return a.getPort();
  }

  private static String loopback(String hostPort) {
    return LOOPBACK + ":" + portOf(hostPort);
  }

  /** Writes the conf directory and returns the ready line. */
  private String publish() throws IOException {
    Configuration effective = yarn.getConfig();
    for (String key : RM_ADDRESS_KEYS) {
      String value = effective.get(key);
      if (value != null && portOf(value) != 0) {
        effective.set(key, loopback(value));
      }
    }
    int nnPort = dfs.getNameNodePort();
    int httpPort = dfs.getNameNode().getHttpAddress().getPort();
    String nn = "hdfs://" + LOOPBACK + ":" + nnPort;
    effective.set(FileSystem.FS_DEFAULT_NAME_KEY, nn);
    effective.set("dfs.namenode.rpc-address", LOOPBACK + ":" + nnPort);
    effective.set("dfs.namenode.http-address", LOOPBACK + ":" + httpPort);

    Map<String, Configuration> files = new LinkedHashMap<>();
    files.put("core-site.xml", new Configuration(false));
    files.put("hdfs-site.xml", new Configuration(false));
    files.put("yarn-site.xml", new Configuration(false));
    TreeSet<String> names = new TreeSet<>();
    for (Map.Entry<String, String> e : effective) {
      names.add(e.getKey());
    }
    for (String name : names) {
      String value;
      try {
        value = effective.get(name);
      } catch (RuntimeException e) {
        value = effective.getRaw(name);
      }
      // Empty values mean "unset" to Hadoop (its *-default.xml still supply them to Java
      // clients), but a non-Java reader may take them as set, e.g. an empty
      // dfs.data.transfer.protection; leave them out.
      if (value == null || value.isEmpty()) {
        continue;
      }
      String file =
          name.startsWith("dfs.") ? "hdfs-site.xml"
              : name.startsWith("yarn.") ? "yarn-site.xml"
              : "core-site.xml";
      files.get(file).set(name, value, "filex-cluster");
    }

    Path confDir = options.confDir;
    Files.createDirectories(confDir);
    for (Map.Entry<String, Configuration> f : files.entrySet()) {
      Path tmp = confDir.resolve(f.getKey() + ".tmp");
      try (OutputStream os = new FileOutputStream(tmp.toFile())) {
        f.getValue().writeXml(os);
      }
      Files.move(tmp, confDir.resolve(f.getKey()), StandardCopyOption.REPLACE_EXISTING,
          StandardCopyOption.ATOMIC_MOVE);
    }

    String webhdfs = "http://" + LOOPBACK + ":" + httpPort;
    String rm = effective.get(YarnConfiguration.RM_ADDRESS);
    String scheduler = effective.get(YarnConfiguration.RM_SCHEDULER_ADDRESS);
    String rmweb = "http://" + effective.get(YarnConfiguration.RM_WEBAPP_ADDRESS);
    StringBuilder env = new StringBuilder();
    env.append("# Written by the filex test cluster (integration/harness); valid while it runs.\n");
    env.append("FILEX_NAMENODE=").append(nn).append('\n');
    env.append("FILEX_WEBHDFS=").append(webhdfs).append('\n');
    env.append("FILEX_RM_ADDRESS=").append(rm).append('\n');
    env.append("FILEX_RM_SCHEDULER_ADDRESS=").append(scheduler).append('\n');
    env.append("FILEX_RM_WEBAPP=").append(rmweb).append('\n');
    if (kerberos != null) {
      for (Map.Entry<String, String> e : kerberos.envFacts().entrySet()) {
        env.append(e.getKey()).append('=').append(e.getValue()).append('\n');
      }
    }
    Path envTmp = confDir.resolve("cluster.env.tmp");
    Files.write(envTmp, env.toString().getBytes(StandardCharsets.UTF_8));
    Files.move(envTmp, confDir.resolve("cluster.env"), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);

    return READY_PREFIX
        + " nn=" + nn
        + " webhdfs=" + webhdfs
        + " rm=" + rm
        + " scheduler=" + scheduler
        + " rmweb=" + rmweb;
  }

  /** Shutdown hook body: YARN first (its containers may use HDFS), then HDFS. */
  private synchronized void stop() {
    if (stopped) {
      return;
    }
    stopped = true;
    LOG.info("stopping the filex test cluster");
    try {
      Files.deleteIfExists(options.confDir.resolve("cluster.env"));
    } catch (IOException e) {
      LOG.warn("could not remove cluster.env", e);
    }
    if (yarn != null) {
      try {
        yarn.stop();
      } catch (Throwable t) {
        LOG.warn("error stopping MiniYARNCluster", t);
      }
    }
    if (dfs != null) {
      try {
        dfs.shutdown();
      } catch (Throwable t) {
        LOG.warn("error stopping MiniDFSCluster", t);
      }
    }
    if (kerberos != null) {
      try {
        kerberos.stop();
      } catch (Throwable t) {
        LOG.warn("error stopping MiniKdc", t);
      }
    }
    LOG.info("filex test cluster stopped");
  }

  /** Command-line options. */
  static final class Options {
    static final String USAGE =
        "usage: FilexCluster --conf-dir DIR [--work-dir DIR] [--detached]"
            + " [--datanodes N] [--nodemanagers N] [--secure [--short-tokens]]"
            + " [-D key=value]...";

    Path confDir;
    Path workDir = Paths.get("").toAbsolutePath();
    boolean detached;
    boolean secure;
    boolean shortTokens;
    int datanodes = 3;
    int nodemanagers = 3;
    final Map<String, String> overrides = new LinkedHashMap<>();

    static Options parse(String[] args) {
      Options o = new Options();
      List<String> rest = new ArrayList<>(List.of(args));
      while (!rest.isEmpty()) {
        String a = rest.remove(0);
        switch (a) {
          case "--conf-dir":
            o.confDir = Paths.get(value(a, rest)).toAbsolutePath();
            break;
          case "--work-dir":
            o.workDir = Paths.get(value(a, rest)).toAbsolutePath();
            break;
          case "--detached":
            o.detached = true;
            break;
          case "--secure":
            o.secure = true;
            break;
          case "--short-tokens":
            o.shortTokens = true;
            break;
          case "--datanodes":
            o.datanodes = positive(a, value(a, rest));
            break;
          case "--nodemanagers":
            o.nodemanagers = positive(a, value(a, rest));
            break;
          case "-D":
            define(o, value(a, rest));
            break;
          default:
            if (a.startsWith("-D") && a.length() > 2) {
              define(o, a.substring(2));
            } else {
              throw new IllegalArgumentException("unknown argument: " + a);
            }
        }
      }
      if (o.confDir == null) {
        throw new IllegalArgumentException("--conf-dir is required");
      }
      if (o.shortTokens && !o.secure) {
        throw new IllegalArgumentException("--short-tokens needs --secure");
      }
      return o;
    }

    private static String value(String flag, List<String> rest) {
      if (rest.isEmpty()) {
        throw new IllegalArgumentException(flag + " needs a value");
      }
      return rest.remove(0);
    }

    private static int positive(String flag, String v) {
      try {
        int n = Integer.parseInt(v);
        if (n > 0) {
          return n;
        }
      } catch (NumberFormatException e) {
        // fall through
      }
      throw new IllegalArgumentException(flag + " needs a positive number, got " + v);
    }

    private static void define(Options o, String kv) {
      int eq = kv.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("-D needs key=value, got " + kv);
      }
      o.overrides.put(kv.substring(0, eq), kv.substring(eq + 1));
    }
  }
}
