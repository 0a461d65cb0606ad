// A synthetic Odoo log of an exact number of lines, as Odoo's formatter prints it: INFO and
// werkzeug request records, WARNING records, and ERROR/CRITICAL records with tracebacks. The
// generator also returns what it wrote about errors, so checks never rely on the parser itself.
export interface ExpectedError {
  header: string;
  traceback: string[];
}

export interface SyntheticLog {
  text: string;
  lines: number;
  errors: ExpectedError[];
  /** time of the first record (UTC) */
  start: Date;
}

function stamp(d: Date): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)},${iso.slice(20, 23)}`;
}

export function syntheticOdooLog(totalLines: number, start = new Date('2024-05-01T10:00:00.000Z')): SyntheticLog {
  const out: string[] = [];
  const errors: ExpectedError[] = [];
  let i = 0;
  while (out.length < totalLines) {
    const t = stamp(new Date(start.getTime() + i * 10));
    const pid = 40 + (i % 4);
    const room = totalLines - out.length;
    if (i % 97 === 13 && room >= 6) {
      const level = i % 5 === 0 ? 'CRITICAL' : 'ERROR';
      const header = `${t} ${pid} ${level} prod odoo.addons.sale.models.sale_order: Failed to confirm order SO${i}`;
      const tb = [
        'Traceback (most recent call last):',
        `  File "/opt/odoo/addons/sale/models/sale_order.py", line ${100 + (i % 50)}, in action_confirm`,
        '    self._action_confirm()',
        `  File "/opt/odoo/odoo/models.py", line 4321, in _action_confirm`,
        `odoo.exceptions.UserError: order SO${i} has no lines`,
      ];
      out.push(header, ...tb);
      errors.push({ header, traceback: tb });
    } else if (i % 7 === 0) {
      const status = i % 11 === 0 ? 500 : 200;
      out.push(`${t} ${pid} INFO prod werkzeug: 127.0.0.1 - - [01/May/2024 10:00:00] "GET /web/dataset/call_kw/${i} HTTP/1.1" ${status} - 3 0.001 0.003`);
    } else if (i % 31 === 0) {
      out.push(`${t} ${pid} WARNING ? odoo.http: ERROR is only a word here, request ${i}`);
    } else {
      out.push(`${t} ${pid} INFO prod odoo.modules.loading: loading module ${i}`);
    }
    i++;
  }
  return { text: out.join('\n') + '\n', lines: out.length, errors, start };
}
