class ApplicationController < ActionController::Base
  PER_PAGE = 25

  private

  # 1-based page number from params[:page], clamped to 1..total_pages.
  def page_param(total_pages)
    page = params[:page].to_i
    page.clamp(1, [total_pages, 1].max)
  end
end
