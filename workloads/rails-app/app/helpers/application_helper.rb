module ApplicationHelper
  def money(cents)
    number_to_currency(cents / 100.0, unit: "€", format: "%n %u")
  end

  def status_badge(status)
    tag.span(status, class: "badge badge-#{status}")
  end

  def stock_label(stock)
    return tag.span("sold out", class: "badge badge-cancelled") if stock.zero?

    stock < 20 ? "only #{stock} left" : pluralize(stock, "unit")
  end

  # Previous / numbered window / next links for a 1-based page within 1..total_pages.
  def pagination(page, total_pages, window: 3)
    return if total_pages <= 1

    pages = ([1, page - window].max..[total_pages, page + window].min).map do |n|
      n == page ? tag.strong(n) : link_to(n, url_for(page: n))
    end
    pages.unshift(link_to("« prev", url_for(page: page - 1))) if page > 1
    pages.push(link_to("next »", url_for(page: page + 1))) if page < total_pages
    tag.nav(safe_join(pages, " "), class: "pagination")
  end
end
