// What the mail reconciler needs from pulser's built-in mail catcher: where its SMTP server listens
// and the SMTP AUTH credentials that identify an environment (user = environment name). The
// catcher of src/mail (MailCatcher) has this shape.

export interface MailCatcherRoute {
  /** SMTP port of the catcher on the Docker host (containers reach it at mail.catcher_host) */
  port: number;
  credentialsFor(env: string): { user: string; pass: string };
}
