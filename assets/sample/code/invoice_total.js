// Sums line items on an invoice, with VAT at 20 percent.
function invoiceTotal(items) {
  const net = items.reduce((sum, item) => sum + item.price * item.quantity, 0);
  return Math.round(net * 1.2 * 100) / 100;
}

module.exports = { invoiceTotal };
