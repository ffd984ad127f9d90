// The large mail providers and sending platforms whitelisted by default: mail
// from their published networks is never greylisted or delayed. Where a
// provider's own domain merely redirects or includes a shared record, that
// record is listed too, so a change in the wrapper does not lose it. These
// are names whose SPF records are walked — nothing here is an address.
// Override with `intel.spf_whitelist.domains` in the config.

export interface DefaultSender {
  domain: string;
  /** Who sends from there. */
  note: string;
}

export const DEFAULT_SENDERS: readonly DefaultSender[] = [
  { domain: 'gmail.com', note: 'Google: Gmail' },
  { domain: 'google.com', note: 'Google: Workspace' },
  { domain: '_spf.google.com', note: 'Google: shared record of Gmail and Workspace' },
  { domain: 'outlook.com', note: 'Microsoft: Outlook.com, Hotmail, Live' },
  { domain: 'spf.protection.outlook.com', note: 'Microsoft: Exchange Online / Microsoft 365' },
  { domain: 'yahoo.com', note: 'Yahoo Mail' },
  { domain: 'aol.com', note: 'AOL (Yahoo)' },
  { domain: 'icloud.com', note: 'Apple: iCloud Mail' },
  { domain: 'apple.com', note: 'Apple' },
  { domain: 'amazonses.com', note: 'Amazon SES' },
  { domain: 'sendgrid.net', note: 'Twilio SendGrid' },
  { domain: 'servers.mcsv.net', note: 'Mailchimp' },
  { domain: 'mandrillapp.com', note: 'Mailchimp Transactional (Mandrill)' },
  { domain: '_spf.salesforce.com', note: 'Salesforce' },
  { domain: 'zoho.com', note: 'Zoho Mail' },
  { domain: 'zoho.eu', note: 'Zoho Mail (EU)' },
  { domain: 'protonmail.ch', note: 'Proton Mail' },
  { domain: 'fastmail.com', note: 'Fastmail' },
  { domain: 'spf.messagingengine.com', note: 'Fastmail (shared record)' },
  { domain: 'mailgun.org', note: 'Mailgun' },
  { domain: 'sparkpostmail.com', note: 'SparkPost' },
  { domain: 'spf.mtasv.net', note: 'Postmark' },
  { domain: 'spf.brevo.com', note: 'Brevo (Sendinblue)' },
  { domain: 'spf.mailjet.com', note: 'Mailjet' },
  { domain: 'mail.zendesk.com', note: 'Zendesk' },
  { domain: 'gmx.net', note: 'GMX' },
  { domain: 'web.de', note: 'WEB.DE' },
  { domain: 'mail.ru', note: 'Mail.ru' },
  { domain: 'yandex.ru', note: 'Yandex Mail' },
  { domain: 'facebookmail.com', note: 'Meta (Facebook, Instagram notifications)' },
  { domain: 'linkedin.com', note: 'LinkedIn' },
];

export const DEFAULT_SENDER_DOMAINS: readonly string[] = DEFAULT_SENDERS.map((s) => s.domain);
