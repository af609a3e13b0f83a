package dev.filex.harness;

import java.security.PrivilegedExceptionAction;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FsShell;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.util.ToolRunner;

/**
 * Hadoop's own FsShell ({@code hdfs dfs ...}) against the running test cluster, for
 * {@code scripts/cluster.sh fs ARGS...}. The cluster's conf directory is on the classpath, so
 * the shell sees its core-, hdfs- and yarn-site.xml.
 *
 * <p>On a secure cluster the script passes the submitter's principal and keytab as the system
 * properties {@code filex.principal} and {@code filex.keytab} (never as arguments of the shell
 * command itself), and the shell runs as that user.
 */
public final class Shell {
  private Shell() {}

  public static void main(String[] args) throws Exception {
    Configuration conf = new Configuration();
    UserGroupInformation.setConfiguration(conf);
    String principal = System.getProperty("filex.principal", "");
    String keytab = System.getProperty("filex.keytab", "");
    if (!principal.isEmpty() && !keytab.isEmpty()) {
      UserGroupInformation.loginUserFromKeytab(principal, keytab);
    }
    UserGroupInformation ugi = UserGroupInformation.getLoginUser();
    int rc = ugi.doAs((PrivilegedExceptionAction<Integer>) () -> ToolRunner.run(conf, new FsShell(conf), args));
    System.exit(rc);
  }
}
